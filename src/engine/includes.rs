//! The `--include` lists in a run: each one loaded and checked
//! ([`crate::include`]) against the serial last accepted from it, and, when
//! it passes, kept in the state as that include's last good copy, replaced
//! whole. On any failure (missing, tampered, unsigned, replayed, stale) the
//! last good copy stays in force and a warning says why. Included entries
//! are their own source: never manual bans, carved by the allowlist and
//! the reserved ranges like every other ([`crate::rules::blocklist`]).

use tracing::{info, warn};

use crate::include::{Include, IncludeError, IncludeOpts, IncludedList};
use crate::state::Included;

use super::Engine;

impl Engine<'_> {
    /// Loads every `--include` list; an include no longer given is dropped
    /// from the state. Returns how many failed (their last good copy, if
    /// any, stays).
    pub fn load_includes(&mut self, now: i64) -> usize {
        let inc = &self.cfg.include;
        let before = self.state.includes.len();
        self.state.includes.retain(|p, _| inc.files.contains(p));
        if self.state.includes.len() != before {
            self.dirty = true;
        }
        let mut failed = 0;
        for path in &inc.files {
            let kept = self.state.includes.get(path);
            let opts = IncludeOpts {
                keys: inc.keys.clone(),
                allow_unsigned: inc.unsigned,
                last_serial: kept.and_then(|k| k.serial),
                max_age: inc.max_age,
                now,
                ..IncludeOpts::default()
            };
            let keeps = || match kept {
                Some(k) => format!(
                    "the last good copy stays ({} entries, serial {}, accepted {})",
                    k.nets.len(),
                    k.serial.map_or("-".to_string(), |s| s.to_string()),
                    crate::parse::time::iso(k.loaded)
                ),
                None => "nothing from it is listed".to_string(),
            };
            let list = match Include::load(path, &opts) {
                Ok(list) => list,
                // Authentic but old: the collector or the pull job is down.
                // Still the newest list there is: used, and warned about.
                Err(IncludeError::Stale { list, age, max_age }) => {
                    warn!(
                        "{}: stale: {age} s old, more than the {max_age} s of --include-max-age \
                         (is the pull job or the collector down?)",
                        path.display()
                    );
                    *list
                }
                Err(e) => {
                    warn!("include {e}: {}", keeps());
                    failed += 1;
                    continue;
                }
            };
            self.accept(list, now);
        }
        failed
    }

    fn accept(&mut self, list: IncludedList, now: i64) {
        for s in &list.skipped_samples {
            warn!("{}: {s}: skipped", list.path.display());
        }
        let new = Included {
            serial: list.header.map(|h| h.serial),
            time: list.time,
            loaded: now,
            key: list.signed_by,
            nets: list.nets,
        };
        let same =
            self.state.includes.get(&list.path).is_some_and(|k| {
                k.serial == new.serial && k.nets == new.nets && k.key == new.key && k.time == new.time
            });
        if same {
            return;
        }
        if self.loud {
            info!(
                "{}: {} entries{}{}",
                list.path.display(),
                new.nets.len(),
                new.serial.map(|s| format!(", serial {s}")).unwrap_or_default(),
                new.key.as_ref().map(|k| format!(", signed by key {k}")).unwrap_or_else(|| ", unsigned".into())
            );
        }
        self.state.includes.insert(list.path, new);
        self.dirty = true;
    }
}
