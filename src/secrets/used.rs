//! The secrets a run uses: found in the templates of its tasks, decrypted once before the
//! first command, handed to `secret()` (an object holding the values, wiped on drop) and
//! to the redactor. Must not: open the store (or ask for a key) when no task of the run
//! uses a secret.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use zeroize::Zeroizing;

use super::{KeyOptions, MasterKey, Purpose, Redactor, Store};
use crate::config::Config;
use crate::error::Error;

/// Decrypted values by name, as `secret("NAME")` reads them.
#[derive(Debug)]
struct Values(BTreeMap<String, Zeroizing<String>>);

impl Object for Values {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_str()?).map(|v| Value::from(v.as_str()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Names are not listed: a template reads one secret at a time.
        Enumerator::Empty
    }
}

/// For the templates of `tasks`: the values `secret()` finds and a redactor masking them;
/// None when they use no secret. `keyfile` is `--keyfile`.
pub fn for_run(
    config: &Config,
    tasks: &[usize],
    keyfile: Option<&Path>,
) -> Result<Option<(Value, Redactor)>, Error> {
    let run_templates = config.run_templates(tasks);
    let templates = || run_templates.iter().map(|(_, t)| *t);
    if !templates().any(|t| t.value.may_hold_secret()) {
        return Ok(None);
    }
    let path = super::store_path(&config.root);
    let opts = KeyOptions {
        keyfile: keyfile.map(Path::to_path_buf),
        config_keyfile: config.settings.secrets_keyfile.clone(),
        root: config.root.clone(),
    };
    let key = MasterKey::resolve(&opts, &path, Purpose::Open)?;
    let store = Store::open(&path, &key)?;
    // A computed name (`secret(x)`) may be any of them.
    let dynamic = templates().any(|t| t.value.dynamic_calls().any(|(f, _)| f == "secret"));
    let mut names: Vec<String> = if dynamic {
        store.names().map(str::to_string).collect()
    } else {
        templates()
            .flat_map(|t| t.value.secrets().map(|(n, _)| n.to_string()))
            .collect()
    };
    names.sort();
    names.dedup();
    let mut values = BTreeMap::new();
    for name in names {
        let v = store.get(&name)?;
        values.insert(name, v);
    }
    // Masked as they are and as `quote` writes them into a command (`-v` echoes it).
    let quoted: Vec<(&str, Zeroizing<String>)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), Zeroizing::new(v.replace('\'', "'\\''"))))
        .filter(|(k, q)| q.as_str() != values[*k].as_str())
        .collect();
    let redactor = Redactor::new(
        values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(quoted.iter().map(|(k, q)| (*k, q.as_str()))),
    );
    log::debug!("secrets: {} opened for this run", values.len());
    Ok(Some((Value::from_object(Values(values)), redactor)))
}
