//! A minimal JSON writer: string literals and flat objects appended to a
//! `String`, for the event lines handed to hooks. It only writes; nothing in
//! badguys reads JSON. Values come in as bytes (user names from the log are
//! bytes), and bytes that are not UTF-8 are written as U+FFFD, so the output
//! is always valid JSON and valid UTF-8.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, quotes included. `"` and `\` are
/// escaped, control characters become `\n`, `\r`, `\t`, `\b`, `\f` or
/// `\u00XX`, and each maximal invalid UTF-8 sequence becomes one U+FFFD (as
/// [`String::from_utf8_lossy`] does).
pub fn string(out: &mut String, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if c < ' ' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out.push('"');
}

/// A flat JSON object written field by field onto the end of a `String`:
///
/// ```
/// # use badguys::json::Obj;
/// let mut out = String::new();
/// Obj::new(&mut out).str("addr", b"198.51.100.7").num("hits", 3).strs("users", &["admin", "test"]).end();
/// assert_eq!(out, r#"{"addr":"198.51.100.7","hits":3,"users":["admin","test"]}"#);
/// ```
///
/// Keys are escaped like values. Fields are written in call order, and
/// nothing checks for duplicate keys. Nested objects are built in their own
/// `String` and added with [`Obj::raw`].
#[must_use = "an object is only closed by end()"]
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object (`{`) at the end of `out`.
    pub fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, key.as_bytes());
        self.out.push(':');
    }

    /// A string field.
    pub fn str(mut self, key: &str, value: &[u8]) -> Self {
        self.key(key);
        string(self.out, value);
        self
    }

    /// A string field, or `null` when `value` is `None`.
    pub fn opt_str(mut self, key: &str, value: Option<&[u8]>) -> Self {
        self.key(key);
        match value {
            Some(v) => string(self.out, v),
            None => self.out.push_str("null"),
        }
        self
    }

    /// An unsigned number field.
    pub fn num(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// A signed number field.
    pub fn int(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// A `true`/`false` field.
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// A field whose value is already JSON (an object or array built
    /// elsewhere); it is copied as is, unchecked.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// An array of strings.
    pub fn strs<S: AsRef<[u8]>>(mut self, key: &str, values: &[S]) -> Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            string(self.out, v.as_ref());
        }
        self.out.push(']');
        self
    }

    /// Closes the object (`}`).
    pub fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        let mut out = String::new();
        string(&mut out, b);
        out
    }

    #[test]
    fn plain_and_empty() {
        assert_eq!(s(b""), r#""""#);
        assert_eq!(s(b"198.51.100.7"), r#""198.51.100.7""#);
        assert_eq!(s("héllo €".as_bytes()), "\"héllo €\"");
    }

    #[test]
    fn quotes_and_backslashes() {
        assert_eq!(s(br#"a"b"#), r#""a\"b""#);
        assert_eq!(s(br"a\b"), r#""a\\b""#);
        assert_eq!(s(br#"\""#), r#""\\\"""#);
        // A forward slash needs no escape.
        assert_eq!(s(b"a/b"), r#""a/b""#);
    }

    #[test]
    fn control_bytes() {
        assert_eq!(s(b"\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(s(b"\x00\x01\x1b\x1f"), r#""\u0000\u0001\u001b\u001f""#);
        // Space and DEL are not control characters for JSON.
        assert_eq!(s(b" \x7f"), "\" \x7f\"");
        assert_eq!(s(b"x from 198.51.100.9 port 22\nInvalid user"), r#""x from 198.51.100.9 port 22\nInvalid user""#);
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(s(b"\xff"), "\"\u{fffd}\"");
        assert_eq!(s(b"a\xffb"), "\"a\u{fffd}b\"");
        // One replacement per maximal invalid sequence, like from_utf8_lossy.
        assert_eq!(s(b"\xf0\x9f\x98"), "\"\u{fffd}\"");
        assert_eq!(s(b"\xff\xfe"), "\"\u{fffd}\u{fffd}\"");
        assert_eq!(s(b"\xc3(\""), "\"\u{fffd}(\\\"\"");
        let bytes = b"ro\xe9ot\xc0\x80x";
        assert_eq!(s(bytes), format!("\"{}\"", String::from_utf8_lossy(bytes)));
    }

    #[test]
    fn object_fields() {
        let mut out = String::from("prefix ");
        Obj::new(&mut out)
            .str("event", b"ban")
            .num("hits", 3)
            .int("delta", -2)
            .bool("new", true)
            .bool("old", false)
            .raw("rules", r#"{"invalid-user":3}"#)
            .strs("users", &["admin", "te\"st"])
            .opt_str("host", None)
            .opt_str("user", Some(b"r\xffoot"))
            .end();
        assert_eq!(
            out,
            "prefix {\"event\":\"ban\",\"hits\":3,\"delta\":-2,\"new\":true,\"old\":false,\
             \"rules\":{\"invalid-user\":3},\"users\":[\"admin\",\"te\\\"st\"],\"host\":null,\"user\":\"r\u{fffd}oot\"}"
        );
    }

    #[test]
    fn empty_object_array_and_escaped_keys() {
        let mut out = String::new();
        Obj::new(&mut out).end();
        assert_eq!(out, "{}");

        out.clear();
        let none: &[&[u8]] = &[];
        Obj::new(&mut out).strs("users", none).str("we\"ird\n", b"").end();
        assert_eq!(out, r#"{"users":[],"we\"ird\n":""}"#);

        out.clear();
        let owned = vec![b"a".to_vec(), b"\x01".to_vec()];
        Obj::new(&mut out).strs("users", &owned).num("max", u64::MAX).int("min", i64::MIN).end();
        assert_eq!(out, r#"{"users":["a","\u0001"],"max":18446744073709551615,"min":-9223372036854775808}"#);
    }

    #[test]
    fn nested_through_raw() {
        let mut rules = String::new();
        Obj::new(&mut rules).num("invalid-user", 3).num("kex-reset", 1).end();
        let mut out = String::new();
        Obj::new(&mut out).str("addr", b"2001:db8::1").raw("rules", &rules).end();
        assert_eq!(out, r#"{"addr":"2001:db8::1","rules":{"invalid-user":3,"kex-reset":1}}"#);
    }
}
