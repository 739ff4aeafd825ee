//! `nexus schema`: the JSON Schema of nexus.toml agrees with the loader. The example and
//! every good config of the repository validate; every table the schema describes takes
//! exactly the keys the loader takes (read from the loader's own unknown-key errors);
//! values the schema describes by pattern (durations, file modes) are accepted by the
//! schema exactly when the loader accepts them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn schema() -> Value {
    let run = Test::new().args(&["schema"]).run();
    run.expect_code(0).expect_stderr("");
    serde_json::from_str(&run.stdout).expect("nexus schema prints JSON")
}

fn validator(schema: &Value) -> jsonschema::Validator {
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::draft202012::new(schema).expect("the schema is a valid draft 2020-12 schema")
}

/// A nexus.toml as the JSON value an editor validates.
fn as_json(toml_text: &str) -> Value {
    toml::from_str(toml_text).expect("TOML")
}

/// The schema's complaints about `toml_text`, one line each ("" when it is valid).
fn complaints(v: &jsonschema::Validator, toml_text: &str) -> String {
    let doc = as_json(toml_text);
    v.iter_errors(&doc)
        .map(|e| format!("{}: {e}\n", e.instance_path()))
        .collect()
}

/// The good configs of the repository: the example, what `nexus init` writes, the demos.
fn good_configs() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(Path::new(REPO).join(p)).expect(p);
    let t = Test::new().args(&["init"]);
    t.run().expect_code(0);
    let mut out = vec![
        ("nexus.toml.example".to_string(), read("nexus.toml.example")),
        ("nexus init".to_string(), t.read("nexus.toml")),
    ];
    for entry in walk(&Path::new(REPO).join("testdata")) {
        let name = entry.to_string_lossy().into_owned();
        if name.ends_with("nexus.toml") || name.ends_with("nexus.toml.in") {
            let text = std::fs::read_to_string(&entry).expect("read fixture");
            out.push((name, text.replace("@DIR@", "/tmp/demo")));
        }
    }
    assert!(out.len() >= 4, "the demo configs are found: {out:?}");
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn the_example_and_every_good_config_are_valid() {
    let v = validator(&schema());
    for (name, text) in good_configs() {
        assert_text(
            &format!("schema errors of {name}"),
            &complaints(&v, &text),
            "",
        );
        // And they are good for the loader too (the demo's paths need not exist).
        let t = Test::new().toml(&text).args(&["validate"]);
        let run = t.run();
        assert_eq!(run.code, 0, "{name}:\n{}", run.show());
    }
}

/// The tables of the schema that list their keys: where they are, as JSON pointers.
fn closed_tables(schema: &Value, at: String, out: &mut BTreeMap<String, Vec<String>>) {
    match schema {
        Value::Object(m) => {
            if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                let keys = m["properties"]
                    .as_object()
                    .expect("properties")
                    .keys()
                    .cloned()
                    .collect();
                out.insert(at.clone(), keys);
            }
            for (k, v) in m {
                closed_tables(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                closed_tables(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_table_takes_the_keys_the_loader_takes() {
    let schema = schema();
    let v = validator(&schema);
    let mut tables = BTreeMap::new();
    closed_tables(&schema, String::new(), &mut tables);
    // An unknown key in every table the loader reads; its errors list what each takes.
    let file = r#"
        zz_not_a_key = 1
        [config]
        zz_not_a_key = 1
        [hosts.g]
        hosts = ["a.example", { host = "b.example", zz_not_a_key = 1 }]
        zz_not_a_key = 1
        [tasks.t]
        zz_not_a_key = 1
        run = [{ cmd = "true", zz_not_a_key = 1 }, { secret = "S", to = "/tmp/x", zz_not_a_key = 1 },
               { upload = "a", to = "b", zz_not_a_key = 1 }, { template = "a.j2", to = "b", zz_not_a_key = 1 },
               { download = "a", to = "b", zz_not_a_key = 1 }]
    "#;
    let run = Test::new().toml(file).args(&["validate"]).run();
    run.expect_code(2);
    let mut loader = BTreeMap::new();
    for line in run.stderr.lines() {
        if let Some((what, keys)) = line
            .trim()
            .strip_prefix("= help: ")
            .and_then(|l| l.split_once(" takes: "))
        {
            let keys: Vec<String> = keys.split(", ").map(str::to_string).collect();
            loader.insert(what.to_string(), keys);
        }
    }
    let place = [
        ("the top level", ""),
        ("[config]", "/properties/config"),
        ("a host group table", "/$defs/group"),
        ("task `t`", "/$defs/task"),
        ("a command", "/$defs/command"),
        ("a secret step", "/$defs/secret_step"),
    ];
    // The three file steps share one table in the schema: each takes a part of it.
    let mut file_keys: Vec<String> = ["an upload step", "a template step", "a download step"]
        .iter()
        .flat_map(|w| loader.remove(*w).unwrap_or_default())
        .collect();
    file_keys.sort();
    file_keys.dedup();
    let mut schema_file = tables.remove("/$defs/file_step").unwrap_or_default();
    schema_file.sort();
    assert_eq!(schema_file, file_keys, "the keys of file steps");
    let host_table = "/$defs/group/properties/hosts/anyOf/1/items/anyOf/1";
    assert_eq!(
        tables.remove(host_table).unwrap_or_default(),
        loader.remove("a host table").unwrap_or_default(),
        "the keys of a host table"
    );
    assert_eq!(loader.len(), place.len(), "{}", run.show());
    for (what, pointer) in place {
        let schema_keys = tables.remove(pointer).unwrap_or_default();
        assert_eq!(
            schema_keys, loader[what],
            "the keys of {what} (schema {pointer:?}) and of the loader"
        );
    }
    assert!(
        tables.is_empty(),
        "tables of the schema the test does not compare with the loader: {tables:?}"
    );
    // The schema refuses the file too, at each place (at the level of the `anyOf` for a
    // host or a step, whose message quotes the whole value).
    let c = complaints(&v, &unindent(file));
    for place in ["/config: ", "/hosts/g: ", "/tasks/t/run: ", "/tasks/t: "] {
        assert!(
            c.contains(place) && c.contains("zz_not_a_key"),
            "{place}: {c}"
        );
    }
    assert!(
        c.lines().any(|l| l.starts_with(": ")
            || l.contains("'zz_not_a_key' was unexpected") && !l.starts_with('/')),
        "{c}"
    );
}

#[test]
fn a_misspelled_key_is_refused_by_both() {
    let v = validator(&schema());
    let file = "
        [config]
        paralel_limit = 4
        [tasks.t]
        run = \"true\"
    ";
    assert_text(
        "schema errors",
        &complaints(&v, &unindent(file)),
        "/config: Additional properties are not allowed ('paralel_limit' was unexpected)\n",
    );
    Test::new().toml(file).args(&["validate"]).run().expect(
        2,
        "",
        &unindent(
            "
            Error: Validation failed

              nexus.toml:2:1: unknown key `paralel_limit` in [config]
                |
              2 | paralel_limit = 4
                | ^^^^^^^^^^^^^
                = help: did you mean `parallel_limit`?
            ",
        ),
    );
}

/// Whether the schema and the loader take `value` for `key` after `head` (TOML that ends
/// in the key's table).
fn both_take(v: &jsonschema::Validator, head: &str, key: &str, value: &str) -> (bool, bool) {
    let file = format!("{head}\n{key} = {value}\n");
    let schema_ok = v.is_valid(&as_json(&file));
    let run = Test::new().toml(&file).args(&["validate"]).run();
    (schema_ok, run.code == 0)
}

#[test]
fn patterns_agree_with_the_loader() {
    let v = validator(&schema());
    // `retry_delay` takes zero, so the duration's syntax alone decides.
    let head = "[tasks.t]\nrun = \"true\"\n[config]";
    for d in [
        "\"10s\"",
        "\"250ms\"",
        "\"1m30s\"",
        "\" 5 m \"",
        "\"1.5h\"",
        "\".5s\"",
        "\"2secs\"",
        "\"3 mins 4 hrs\"",
        "1500",
        "\"10\"",
        "\"s\"",
        "\"10x\"",
        "\"\"",
        "\"1..5s\"",
        "\"-1s\"",
        "-5",
        "true",
    ] {
        let (schema_ok, loader_ok) = both_take(&v, head, "connect_timeout", d);
        assert_eq!(schema_ok, loader_ok, "connect_timeout = {d}");
    }
    let head = "[tasks.t]\nrun = { secret = \"S\", to = \"/tmp/x\"";
    for m in [
        "\"0640\"",
        "\"640\"",
        "\"7777\"",
        "\"0999\"",
        "\"12345\"",
        "\"64\"",
        "640",
    ] {
        let file = format!("{head}, mode = {m} }}\n");
        let schema_ok = v.is_valid(&as_json(&file));
        let run = Test::new().toml(&file).args(&["validate"]).run();
        // The store is missing (an error of its own): only `mode`'s errors count here.
        let loader_ok = !run.stderr.contains("`mode`");
        assert_eq!(schema_ok, loader_ok, "mode = {m}:\n{}", run.show());
    }
}
