//! How a transport lays out the JSON it writes: Janus's transports' `json` setting. Messages
//! are made compact; a transport set to another layout lays each out again as it writes it.
//!
//! The three are jansson's: `compact` (`JSON_COMPACT`: no spaces), `plain` (`JSON_INDENT(0)`:
//! one line, `", "` and `": "` between items), `indented` (`JSON_INDENT(3)`: a line per item,
//! three spaces per level).

use serde::{Deserialize, Serialize};
use serde_json::ser::{Formatter, PrettyFormatter, Serializer};
use serde_json::Value;
use std::io;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    Compact,
    Plain,
    Indented,
}

impl Layout {
    /// The layout Janus names so (any case), if it is one.
    pub fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "compact" => Some(Layout::Compact),
            "plain" => Some(Layout::Plain),
            "indented" => Some(Layout::Indented),
            _ => None,
        }
    }

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Self {
        match i {
            1 => Layout::Plain,
            2 => Layout::Indented,
            _ => Layout::Compact,
        }
    }

    /// `compact` JSON text laid out in this layout (unchanged when compact, or not JSON).
    pub fn lay_out(self, compact: String) -> String {
        let value: Value = match self {
            Layout::Compact => return compact,
            _ => match serde_json::from_str(&compact) {
                Ok(v) => v,
                Err(_) => return compact,
            },
        };
        let mut out = Vec::with_capacity(compact.len() * 2);
        let written = match self {
            Layout::Indented => {
                value.serialize(&mut Serializer::with_formatter(&mut out, PrettyFormatter::with_indent(b"   ")))
            }
            _ => value.serialize(&mut Serializer::with_formatter(&mut out, PlainFormatter)),
        };
        match (written, String::from_utf8(out)) {
            (Ok(()), Ok(text)) => text,
            _ => compact,
        }
    }
}

/// One line, a space after each separator (jansson's `JSON_INDENT(0)`); the rest as compact.
struct PlainFormatter;

impl Formatter for PlainFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPACT: &str = r#"{"janus":"success","data":{"id":1,"list":[1,2],"empty":{},"none":[]}}"#;

    #[test]
    fn each_layout_is_jansson_s() {
        assert_eq!(Layout::Compact.lay_out(COMPACT.into()), COMPACT);
        assert_eq!(
            Layout::Plain.lay_out(COMPACT.into()),
            r#"{"janus": "success", "data": {"id": 1, "list": [1, 2], "empty": {}, "none": []}}"#
        );
        assert_eq!(
            Layout::Indented.lay_out(COMPACT.into()),
            "{\n   \"janus\": \"success\",\n   \"data\": {\n      \"id\": 1,\n      \"list\": [\n         1,\n         2\n      ],\n      \"empty\": {},\n      \"none\": []\n   }\n}"
        );
    }

    #[test]
    fn names_are_janus_s_in_any_case() {
        assert_eq!(Layout::named("Indented"), Some(Layout::Indented));
        assert_eq!(Layout::named("fancy"), None);
        for l in [Layout::Compact, Layout::Plain, Layout::Indented] {
            assert_eq!(Layout::from_index(l.index()), l);
        }
    }
}
