//! Fake API server, selectors: `labelSelector` / `fieldSelector` query strings → matchers over JSON objects;
//! must not accept syntax the apiserver rejects without saying so.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

/// A parsed label or field selector (all requirements must hold).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    reqs: Vec<(String, Op)>,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }
    fn peek(&self) -> &str {
        &self.s[self.pos..]
    }
    fn ident(&mut self) -> String {
        self.skip_ws();
        let rest = self.peek();
        let n = rest.find(|c: char| !is_key_char(c)).unwrap_or(rest.len());
        let out = rest[..n].to_string();
        self.pos += n;
        out
    }
    fn token_name(&self) -> String {
        let rest = self.peek().trim_start();
        for op in ["==", "!=", "=", "!", ",", "(", ")"] {
            if rest.starts_with(op) {
                return op.to_string();
            }
        }
        rest.split(|c: char| !is_key_char(c))
            .next()
            .unwrap_or("")
            .to_string()
    }
}

impl Selector {
    /// Parses a label selector (`a=b,c!=d,e in (f,g),!h,i`).
    pub fn parse_labels(s: &str) -> Result<Self, String> {
        let mut lx = Lexer { s, pos: 0 };
        let mut reqs = Vec::new();
        lx.skip_ws();
        if lx.peek().is_empty() {
            return Ok(Selector { reqs });
        }
        loop {
            lx.skip_ws();
            let negated = if lx.peek().starts_with('!') {
                lx.pos += 1;
                true
            } else {
                false
            };
            let key = lx.ident();
            if key.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: identifier",
                    lx.token_name()
                ));
            }
            lx.skip_ws();
            let rest = lx.peek();
            let op = if negated {
                Op::NotExists
            } else if rest.is_empty() || rest.starts_with(',') {
                Op::Exists
            } else if let Some(r) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
                lx.pos += rest.len() - r.len();
                Op::Eq(lx.ident())
            } else if let Some(r) = rest.strip_prefix("!=") {
                lx.pos += rest.len() - r.len();
                Op::NotEq(lx.ident())
            } else if rest.starts_with("in ") || rest.starts_with("in(") {
                lx.pos += 2;
                Op::In(Self::parse_set(&mut lx)?)
            } else if rest.starts_with("notin ") || rest.starts_with("notin(") {
                lx.pos += 5;
                Op::NotIn(Self::parse_set(&mut lx)?)
            } else {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    lx.token_name()
                ));
            };
            reqs.push((key, op));
            lx.skip_ws();
            if lx.peek().is_empty() {
                break;
            }
            if lx.peek().starts_with(',') {
                lx.pos += 1;
                continue;
            }
            return Err(format!(
                "found '{}', expected: ',' or 'end of string'",
                lx.token_name()
            ));
        }
        Ok(Selector { reqs })
    }

    fn parse_set(lx: &mut Lexer<'_>) -> Result<Vec<String>, String> {
        lx.skip_ws();
        if !lx.peek().starts_with('(') {
            return Err(format!("found '{}', expected: '('", lx.token_name()));
        }
        lx.pos += 1;
        let mut values = Vec::new();
        loop {
            let v = lx.ident();
            values.push(v);
            lx.skip_ws();
            if lx.peek().starts_with(',') {
                lx.pos += 1;
            } else if lx.peek().starts_with(')') {
                lx.pos += 1;
                return Ok(values);
            } else {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    lx.token_name()
                ));
            }
        }
    }

    /// Parses a field selector (`metadata.name=web,status.phase!=Running`).
    pub fn parse_fields(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, op) = if let Some((k, v)) = part.split_once("!=") {
                (k, Op::NotEq(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once("==") {
                (k, Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once('=') {
                (k, Op::Eq(v.trim().to_string()))
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            reqs.push((k.trim().to_string(), op));
        }
        Ok(Selector { reqs })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    fn holds(op: &Op, value: Option<&str>) -> bool {
        match op {
            Op::Eq(v) => value == Some(v.as_str()),
            Op::NotEq(v) => value != Some(v.as_str()),
            Op::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
            Op::NotIn(vs) => !value.is_some_and(|x| vs.iter().any(|v| v == x)),
            Op::Exists => value.is_some(),
            Op::NotExists => value.is_none(),
        }
    }

    /// Matches against `metadata.labels`.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        self.reqs
            .iter()
            .all(|(k, op)| Self::holds(op, labels.and_then(|l| l.get(k)).and_then(Value::as_str)))
    }

    /// Matches against dotted field paths of the object (missing fields compare as "").
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let mut cur = Some(obj);
            for part in k.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let rendered = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            Self::holds(op, Some(rendered.as_str()))
        })
    }

    /// Matches a plain label map (`spec.selector.matchLabels`-style selectors built by controllers).
    pub fn from_match_labels(labels: &serde_json::Map<String, Value>) -> Self {
        Selector {
            reqs: labels
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Op::Eq(v.as_str().unwrap_or_default().to_string()),
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
        let ok = |s: &str| Selector::parse_labels(s).unwrap().matches_labels(&pod);
        assert!(ok("app=web"));
        assert!(ok("app==web,tier"));
        assert!(!ok("app!=web"));
        assert!(ok("app in (api, web)"));
        assert!(!ok("app notin (web)"));
        assert!(ok("!missing"));
        assert!(!ok("missing"));
        assert!(ok(""));
    }

    #[test]
    fn bad_label_selector_message_as_recorded() {
        assert_eq!(
            Selector::parse_labels("=web").unwrap_err(),
            "unable to parse requirement: found '=', expected: identifier"
        );
    }
}
