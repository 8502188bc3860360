//! Janus-style validation of JSON objects (`JANUS_VALIDATE_JSON_OBJECT` in `utils.h`): the same
//! checks in the same order, producing the same reason texts ("Missing mandatory element (x)",
//! "Invalid element type (x should be a positive integer)"). Used at the edge only.

use serde_json::{Map, Value};

/// The JSON type a parameter must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JType {
    Str,
    /// Accepts `true` and `false`.
    Bool,
    Int,
    Array,
    Object,
    /// A VideoRoom room or participant id: a positive integer, or a string under `string_ids`
    /// (see [`with_string_ids`]).
    Id,
}

thread_local! {
    static STRING_IDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a request's parsing) with [`JType::Id`] meaning strings (`on`) or integers.
pub fn with_string_ids<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let before = STRING_IDS.with(|s| s.replace(on));
    let r = f();
    STRING_IDS.with(|s| s.set(before));
    r
}

/// Whether ids are strings in the request being parsed.
pub fn string_ids() -> bool {
    STRING_IDS.with(std::cell::Cell::get)
}

/// A room or participant id field: its string, or its integer (0 when absent or neither).
pub fn janus_id(obj: &Map<String, Value>, name: &str) -> crate::ids::JanusId {
    match obj.get(name) {
        Some(Value::String(s)) => crate::ids::JanusId::Text(s.as_str().into()),
        Some(v) => crate::ids::JanusId::Num(v.as_u64().unwrap_or(0)),
        None if string_ids() => crate::ids::JanusId::Text("".into()),
        None => crate::ids::JanusId::Num(0),
    }
}

/// One parameter rule: name, type and flags.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub jtype: JType,
    pub required: bool,
    pub positive: bool,
    pub nonempty: bool,
}

impl Param {
    pub const fn opt(name: &'static str, jtype: JType) -> Self {
        Self { name, jtype, required: false, positive: false, nonempty: false }
    }
    pub const fn req(name: &'static str, jtype: JType) -> Self {
        Self { name, jtype, required: true, positive: false, nonempty: false }
    }
    pub const fn positive(mut self) -> Self {
        self.positive = true;
        self
    }
    pub const fn nonempty(mut self) -> Self {
        self.nonempty = true;
        self
    }

    fn type_name(&self) -> String {
        if self.jtype == JType::Id {
            return if string_ids() { "a string" } else { "a positive integer" }.to_owned();
        }
        let article = if self.positive {
            "a positive "
        } else if self.nonempty {
            "a non-empty "
        } else if matches!(self.jtype, JType::Int | JType::Array | JType::Object) {
            "an "
        } else {
            "a "
        };
        let t = match self.jtype {
            JType::Str => "string",
            JType::Bool => "boolean",
            JType::Int => "integer",
            JType::Array => "array",
            JType::Object | JType::Id => "object",
        };
        format!("{article}{t}")
    }

    fn is_valid(&self, v: &Value) -> bool {
        let type_ok = match self.jtype {
            JType::Str => v.is_string(),
            JType::Bool => v.is_boolean(),
            // jansson: integers are JSON numbers without fraction or exponent.
            JType::Int => v.is_i64() || v.is_u64(),
            JType::Array => v.is_array(),
            JType::Object => v.is_object(),
            JType::Id if string_ids() => v.is_string(),
            JType::Id => v.as_u64().is_some(),
        };
        if !type_ok {
            return false;
        }
        if self.positive {
            if let Some(i) = v.as_i64() {
                return i >= 0;
            }
            return true;
        }
        if self.nonempty {
            return match v {
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            };
        }
        true
    }
}

/// Why validation failed; the caller maps it to its own error code table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    Missing(String),
    WrongType(String),
}

impl Invalid {
    pub fn reason(&self) -> &str {
        match self {
            Invalid::Missing(s) | Invalid::WrongType(s) => s,
        }
    }
}

/// Checks `params` in order, stopping at the first failure, with Janus's default texts.
pub fn validate(obj: &Map<String, Value>, params: &[Param]) -> Result<(), Invalid> {
    validate_fmt(obj, params, "Missing mandatory element", "Invalid element type")
}

/// Like [`validate`], with other prefixes (Janus uses "JSEP error: missing mandatory element").
pub fn validate_fmt(obj: &Map<String, Value>, params: &[Param], missing: &str, invalid: &str) -> Result<(), Invalid> {
    for p in params {
        match obj.get(p.name) {
            None => {
                if p.required {
                    return Err(Invalid::Missing(format!("{missing} ({})", p.name)));
                }
            }
            Some(v) => {
                if !p.is_valid(v) {
                    return Err(Invalid::WrongType(format!("{invalid} ({} should be {})", p.name, p.type_name())));
                }
            }
        }
    }
    Ok(())
}

/// A non-negative integer field, or 0 when absent or not an integer (jansson's `json_integer_value`).
pub fn uint(obj: &Map<String, Value>, name: &str) -> u64 {
    obj.get(name).and_then(Value::as_u64).unwrap_or(0)
}

pub fn string(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.get(name).and_then(Value::as_str).map(str::to_owned)
}

pub fn boolean(obj: &Map<String, Value>, name: &str) -> Option<bool> {
    obj.get(name).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reports_first_missing_or_mistyped_parameter_like_janus() {
        let params = [Param::req("room", JType::Int).positive(), Param::opt("pin", JType::Str)];
        assert_eq!(
            validate(&obj(json!({})), &params),
            Err(Invalid::Missing("Missing mandatory element (room)".into()))
        );
        assert_eq!(
            validate(&obj(json!({"room": "x"})), &params),
            Err(Invalid::WrongType("Invalid element type (room should be a positive integer)".into()))
        );
        assert_eq!(
            validate(&obj(json!({"room": -1})), &params),
            Err(Invalid::WrongType("Invalid element type (room should be a positive integer)".into()))
        );
        assert_eq!(
            validate(&obj(json!({"room": 1, "pin": 3})), &params),
            Err(Invalid::WrongType("Invalid element type (pin should be a string)".into()))
        );
        assert!(validate(&obj(json!({"room": 0})), &params).is_ok());
    }

    #[test]
    fn reals_are_not_integers_and_booleans_accept_false() {
        let params = [Param::opt("n", JType::Int), Param::opt("b", JType::Bool)];
        assert!(validate(&obj(json!({"n": 1.5})), &params).is_err());
        assert!(validate(&obj(json!({"b": false})), &params).is_ok());
        assert_eq!(
            validate(&obj(json!({"b": 1})), &params),
            Err(Invalid::WrongType("Invalid element type (b should be a boolean)".into()))
        );
    }
}
