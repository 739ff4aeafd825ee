//! The JSON Schema (draft 2020-12) of nexus.toml that `nexus schema` prints, for editors
//! (taplo, Even Better TOML) to complete keys and flag mistakes as they are typed. Built
//! from the key tables in `keys`, the ones the loader reads with: a key, its kind and its
//! sentence are declared once. Must not: add a key the loader does not take, or check
//! what only the loader can (undefined tasks, cycles, template names).

use serde_json::{json, Map, Value};

use super::duration;
use super::keys::{self, Declared, Kind};

pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The whole schema.
pub fn schema() -> Value {
    let mut root = object(keys::TOP);
    let root_map = root.as_object_mut().expect("object() builds an object");
    let mut head = Map::new();
    head.insert("$schema".into(), json!(DRAFT));
    head.insert("title".into(), json!("nexus.toml"));
    head.insert(
        "description".into(),
        json!(format!(
            "Tasks for nexus {} to run locally and over SSH (`nexus schema` printed this; docs/nexus-toml.md has the reference)",
            env!("CARGO_PKG_VERSION")
        )),
    );
    head.extend(std::mem::take(root_map));
    head.insert("$defs".into(), defs());
    Value::Object(head)
}

/// Shared parts, referred to as `#/$defs/NAME`.
fn defs() -> Value {
    let mut task = object(keys::TASK);
    // The loader refuses a task with neither: it would do nothing.
    task["anyOf"] = json!([{ "required": ["run"] }, { "required": ["deps"] }]);
    let mut command = object(keys::COMMAND);
    command["required"] = json!(["cmd"]);
    let mut secret = object(keys::SECRET_STEP);
    secret["required"] = json!(["secret", "to"]);
    let mut file = object(keys::FILE_STEP);
    file["required"] = json!(["to"]);
    file["oneOf"] = json!([
        { "required": ["upload"] },
        { "required": ["template"] },
        { "required": ["download"] },
    ]);
    let step = json!({
        "anyOf": [
            { "type": "string", "description": "a command line (a template)" },
            { "$ref": "#/$defs/command" },
            { "$ref": "#/$defs/secret_step" },
            { "$ref": "#/$defs/file_step" },
        ]
    });
    let mut group = object(keys::GROUP);
    group["properties"]["hosts"] = json!({
        "description": "host strings, or { host = \"...\", vars = { ... } } tables",
        "anyOf": [
            { "type": "string" },
            { "type": "array", "items": { "anyOf": [
                { "type": "string" },
                { "type": "object", "required": ["host"], "additionalProperties": false,
                  "properties": { "host": { "type": "string" }, "vars": { "type": "object" } } },
            ] } },
        ]
    });
    json!({
        "duration": {
            "description": "an integer of milliseconds, or a string with units: \"250ms\", \"10s\", \"5m\", \"1h\", \"1m30s\"",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": duration::PATTERN },
            ]
        },
        "strings": {
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } },
            ]
        },
        "task": task,
        "command": command,
        "secret_step": secret,
        "file_step": file,
        "step": step,
        "group": group,
        "amount": {
            "description": "a number of hosts, or a percentage of them (\"25%\")",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+%$" },
            ]
        },
    })
}

/// A table of `keys`, and nothing else.
fn object<K: Declared>(keys: &[K]) -> Value {
    let mut properties = Map::new();
    for k in keys {
        let mut v = kind(k.kind());
        if let Value::Object(m) = &mut v {
            m.insert("description".into(), json!(k.doc()));
        }
        properties.insert(k.name().into(), v);
    }
    json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// The schema of one kind of value.
fn kind(k: Kind) -> Value {
    match k {
        Kind::String => json!({ "type": "string" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Integer { min, max } => {
            json!({ "type": "integer", "minimum": min, "maximum": max })
        }
        Kind::Duration => json!({ "$ref": "#/$defs/duration" }),
        Kind::Strings => json!({ "$ref": "#/$defs/strings" }),
        Kind::List => json!({ "type": "array", "items": { "type": "string" }, "minItems": 1 }),
        Kind::Choice(words) => json!({ "enum": words }),
        Kind::Env => json!({
            "type": "object",
            "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
            "additionalProperties": { "type": ["string", "integer", "boolean"] },
        }),
        Kind::Steps => json!({
            "anyOf": [
                { "$ref": "#/$defs/step" },
                { "type": "array", "items": { "$ref": "#/$defs/step" } },
            ]
        }),
        Kind::Table => json!({ "type": "object" }),
        Kind::Amount => json!({ "$ref": "#/$defs/amount" }),
        Kind::Amounts => json!({
            "anyOf": [
                { "$ref": "#/$defs/amount" },
                { "type": "array", "items": { "$ref": "#/$defs/amount" }, "minItems": 1 },
            ]
        }),
        Kind::FileMode => json!({ "type": "string", "pattern": "^[0-7]{3,4}$" }),
        Kind::Config => object(keys::CONFIG),
        Kind::Vars => json!({
            "type": "object",
            "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        }),
        Kind::HostGroups => json!({
            "type": "object",
            "propertyNames": { "not": { "const": "local" } },
            "additionalProperties": {
                "anyOf": [
                    { "$ref": "#/$defs/strings" },
                    { "$ref": "#/$defs/group" },
                ]
            },
        }),
        Kind::Tasks => json!({
            "type": "object",
            "additionalProperties": { "$ref": "#/$defs/task" },
        }),
    }
}

/// `nexus schema`'s output: the schema, pretty-printed, with a final newline.
pub fn text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}
