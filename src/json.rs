//! Placeholder JSON writer until the real one lands.
pub fn string(out: &mut String, s: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}
impl<'a> Obj<'a> {
    pub fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, k.as_bytes());
        self.out.push(':');
    }
    pub fn str(mut self, k: &str, v: &[u8]) -> Self {
        self.key(k);
        string(self.out, v);
        self
    }
    pub fn num(mut self, k: &str, v: u64) -> Self {
        self.key(k);
        self.out.push_str(&v.to_string());
        self
    }
    pub fn raw(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        self.out.push_str(v);
        self
    }
    pub fn strs<T: AsRef<[u8]>>(mut self, k: &str, v: &[T]) -> Self {
        self.key(k);
        self.out.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            string(self.out, s.as_ref());
        }
        self.out.push(']');
        self
    }
    pub fn end(self) {
        self.out.push('}');
    }
}
