//! Placeholder until the hook runner lands.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let v: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if v.is_empty() {
        return Err("empty command".into());
    }
    Ok(v)
}
use std::time::Duration;
pub enum Fired {
    Started,
    Dropped,
}
pub struct Hook {
    argv: Vec<String>,
}
impl Hook {
    pub fn new(_name: &'static str, argv: Vec<String>, _timeout: Duration, _max: usize) -> Hook {
        Hook { argv }
    }
    pub fn fire(&self, _stdin: Vec<u8>, _env: Vec<(String, String)>) -> Fired {
        let _ = &self.argv;
        Fired::Started
    }
    pub fn drain(&self, _limit: Duration) -> bool {
        true
    }
}
