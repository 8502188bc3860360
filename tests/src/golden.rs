//! The recorded Janus replies (`tests/golden`) and the matcher that compares an answer with one.

use serde_json::Value;
use std::path::PathBuf;

/// Where the recorded Janus replies live (`tests/golden`, see its README).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

pub fn golden(name: &str) -> Value {
    let p = golden_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Compares a reply with a golden one: same keys everywhere, same values, except that golden
/// placeholders (`"<session_id>"`, or `<id>` inside a string) match any value. Returns the
/// first difference.
pub fn matches_golden(golden: &Value, actual: &Value) -> Result<(), String> {
    fn walk(g: &Value, a: &Value, path: &str) -> Result<(), String> {
        match (g, a) {
            (Value::String(gs), _) if gs.starts_with('<') && gs.ends_with('>') && !gs[1..].contains('<') => Ok(()),
            (Value::String(gs), Value::String(as_)) if gs.contains('<') => {
                let pattern = regex_lite::escape(gs);
                let re = regex_lite::Regex::new(&format!("^{}$", placeholder_re().replace_all(&pattern, ".+")))
                    .map_err(|e| e.to_string())?;
                if re.is_match(as_) {
                    Ok(())
                } else {
                    Err(format!("{path}: {as_:?} does not match {gs:?}"))
                }
            }
            (Value::Object(go), Value::Object(ao)) => {
                let gk: Vec<_> = go.keys().collect();
                let ak: Vec<_> = ao.keys().collect();
                let mut gks = gk.clone();
                let mut aks = ak.clone();
                gks.sort();
                aks.sort();
                if gks != aks {
                    return Err(format!("{path}: keys {aks:?} differ from golden {gks:?}"));
                }
                for (k, gv) in go {
                    walk(gv, &ao[k], &format!("{path}.{k}"))?;
                }
                Ok(())
            }
            (Value::Array(ga), Value::Array(aa)) => {
                if ga.len() != aa.len() {
                    return Err(format!("{path}: {} elements, golden has {}", aa.len(), ga.len()));
                }
                for (i, (gv, av)) in ga.iter().zip(aa).enumerate() {
                    walk(gv, av, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            _ if g == a => Ok(()),
            _ => Err(format!("{path}: {a} differs from golden {g}")),
        }
    }
    walk(golden, actual, "$")
}

fn placeholder_re() -> regex_lite::Regex {
    // Escaped placeholders look like `<id>` (no regex metacharacters inside).
    regex_lite::Regex::new(r"<[a-z_\-]+>").expect("static regex")
}

/// Asserts `actual` matches the golden file `name`.
#[track_caller]
pub fn assert_golden(name: &str, actual: &Value) {
    if let Err(d) = matches_golden(&golden(name), actual) {
        panic!("{name}: {d}\nactual: {actual:#}");
    }
}
