//! Config, Skaffold import, JSON patches: a profile's `patches` (RFC 6902 operations with JSON Pointer paths,
//! `op` defaulting to `replace` as in Skaffold) applied to a config document. Pure; never panics on a bad path.

use serde_json::Value;

/// One operation as written in `profiles[].patches[]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Operation {
    #[serde(default)]
    pub op: Option<String>,
    pub path: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

/// Applies one operation to `doc`, or says why it cannot be applied (and leaves `doc` as it was).
pub(super) fn apply(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let mut copy = doc.clone();
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| "`value` is missing".to_string())
    };
    let from = || {
        op.from
            .clone()
            .ok_or_else(|| "`from` is missing".to_string())
    };
    match op.op.as_deref().unwrap_or("replace") {
        "add" => add(&mut copy, &op.path, value()?)?,
        "remove" => {
            remove(&mut copy, &op.path)?;
        }
        "replace" => {
            remove(&mut copy, &op.path)?;
            add(&mut copy, &op.path, value()?)?;
        }
        "move" => {
            let v = remove(&mut copy, &from()?)?;
            add(&mut copy, &op.path, v)?;
        }
        "copy" => {
            let v = get(&copy, &from()?)?.clone();
            add(&mut copy, &op.path, v)?;
        }
        "test" => {
            if get(&copy, &op.path)? != &value()? {
                return Err(format!("`test` failed: `{}` holds another value", op.path));
            }
        }
        other => return Err(format!("unknown operation `{other}`")),
    }
    *doc = copy;
    Ok(())
}

/// The reference tokens of a JSON Pointer (`~1` → `/`, `~0` → `~`).
fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "`{path}` is not a JSON pointer (it starts with `/`)"
        ));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'v>(doc: &'v Value, path: &str) -> Result<&'v Value, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m.get(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path `{path}` does not exist in the config"))?;
    }
    Ok(cur)
}

/// The parent container of `path` and the last token.
fn parent<'v>(doc: &'v mut Value, path: &str) -> Result<(&'v mut Value, String), String> {
    let mut toks = tokens(path)?;
    let last = toks
        .pop()
        .ok_or_else(|| "the whole document cannot be patched".to_string())?;
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path `{path}` does not exist in the config"))?;
    }
    Ok((cur, last))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    let (p, last) = parent(doc, path)?;
    match p {
        Value::Object(m) => {
            m.insert(last, v);
        }
        Value::Array(a) if last == "-" => a.push(v),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i <= a.len() => a.insert(i, v),
            _ => return Err(format!("path `{path}`: no list index `{last}`")),
        },
        _ => return Err(format!("path `{path}` does not exist in the config")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (p, last) = parent(doc, path)?;
    let removed = match p {
        Value::Object(m) => m.shift_remove(&last),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Some(a.remove(i)),
            _ => None,
        },
        _ => None,
    };
    removed.ok_or_else(|| format!("path `{path}` does not exist in the config"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(o: &str, path: &str, value: Option<Value>) -> Operation {
        Operation {
            op: Some(o.into()),
            path: path.into(),
            from: None,
            value,
        }
    }

    #[test]
    fn operations_follow_rfc_6902() {
        let mut doc = json!({"build": {"artifacts": [{"image": "a"}, {"image": "b"}]}});
        apply(
            &mut doc,
            &op("replace", "/build/artifacts/0/image", Some(json!("x"))),
        )
        .unwrap();
        apply(
            &mut doc,
            &op("add", "/build/artifacts/-", Some(json!({"image": "c"}))),
        )
        .unwrap();
        apply(&mut doc, &op("remove", "/build/artifacts/1", None)).unwrap();
        assert_eq!(
            doc,
            json!({"build": {"artifacts": [{"image": "x"}, {"image": "c"}]}})
        );
        // A bad path changes nothing and says which path.
        let e = apply(
            &mut doc,
            &op("replace", "/build/artifacts/5/image", Some(json!("y"))),
        )
        .unwrap_err();
        assert!(e.contains("/build/artifacts/5/image"), "{e}");
        assert_eq!(
            doc,
            json!({"build": {"artifacts": [{"image": "x"}, {"image": "c"}]}})
        );
        // `op` defaults to `replace`, as in Skaffold.
        let mut o = op("", "/build/artifacts/0/image", Some(json!("z")));
        o.op = None;
        apply(&mut doc, &o).unwrap();
        assert_eq!(doc["build"]["artifacts"][0]["image"], "z");
    }
}
