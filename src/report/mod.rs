//! `badguys report`: one self-contained HTML file from a [`Data`]. No
//! script, no external URL, no web font: a Content-Security-Policy meta tag
//! (`default-src 'none'; style-src 'unsafe-inline'; img-src data:`) makes
//! the browser refuse any request the page might try. Charts and the world
//! map are inline SVG ([`svg`]); the day/month/year switch is CSS-only
//! (radio buttons and `:checked`). Every attacker-controlled string (user
//! names, host names, reasons, database names) goes through [`esc`] or
//! [`esc_bytes`]; invalid UTF-8 shows as `\xNN`. The panels, in order:
//! summary cards with the intrusion alarm, timelines, hour of day, the
//! map, countries, networks, user names, rule mix, reporting hosts, top
//! offenders, newest bans, logins of listed addresses, manual bans, and
//! what the data covers (days, hosts, databases and their attribution).

pub mod data;
pub mod svg;

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

pub use data::{Data, Options};

use crate::parse::time::iso;
use crate::Error;

/// The page's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => {
                let mut b = [0u8; 4];
                for x in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(o, "\\x{x:02x}");
                }
            }
            c => o.push(c),
        }
    }
    o
}

/// Attacker bytes as escaped text: valid UTF-8 as itself, every invalid
/// byte and control character as `\xNN`.
pub fn esc_bytes(b: &[u8]) -> String {
    let mut text = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        text.push_str(&esc(chunk.valid()));
        for x in chunk.invalid() {
            let _ = write!(text, "\\x{x:02x}");
        }
    }
    text
}

/// Writes the report to `path` atomically (mode 0640 for a new file: it
/// shows attackers' addresses and the user names they tried). With
/// `refresh`, the page reloads itself that often (for `watch --report`).
pub fn write(path: &Path, d: &Data, refresh: Option<Duration>) -> Result<(), Error> {
    crate::store::write_atomic(path, render(d, refresh).as_bytes(), 0o640)
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1240px;padding:12px;color:#1d2733;background:#fff}\
h1{font-size:22px;margin:4px 0}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #dde3ea}\
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #dde3ea;border-radius:6px;padding:8px 12px;min-width:120px}\
.card b{display:block;font-size:22px}.alarm{background:#b1361e;color:#fff;padding:10px;border-radius:6px;font-weight:bold;margin:8px 0}\
.ok{background:#e5f3e8;padding:8px;border-radius:6px;margin:8px 0}.warn{background:#fff3cd;padding:8px;border-radius:6px}\
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:2px 6px;border-bottom:1px solid #eef1f4;vertical-align:top}\
td.n,th.n{text-align:right}.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 24px}.none{color:#667}\
.tabs input{display:none}.tabs label{display:inline-block;padding:3px 12px;border:1px solid #c9d3de;border-radius:4px 4px 0 0;cursor:pointer}\
.tabs .pane{display:none}#tab-d:checked~label[for=tab-d],#tab-m:checked~label[for=tab-m],#tab-y:checked~label[for=tab-y]{background:#4a7bb7;color:#fff}\
#tab-d:checked~.p-d,#tab-m:checked~.p-m,#tab-y:checked~.p-y{display:block}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}\
code{font-size:12px}";

/// The whole page.
pub fn render(d: &Data, refresh: Option<Duration>) -> String {
    let mut o = String::with_capacity(256 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(o, "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">");
    if let Some(r) = refresh {
        let _ = write!(o, "<meta http-equiv=\"refresh\" content=\"{}\">", r.as_secs().max(1));
    }
    let _ = write!(
        o,
        "<meta name=\"viewport\" content=\"width=device-width\"><title>badguys on {}</title><style>{STYLE}</style></head><body>",
        esc(&d.hostname)
    );
    let _ = write!(o, "<h1>badguys on {}</h1><p class=\"none\">made {}", esc(&d.hostname), iso(d.generated));
    if let Some(s) = d.since {
        let _ = write!(o, "; counting from {}", iso(s));
    }
    o.push_str("</p>");
    cards(&mut o, d);
    timelines(&mut o, d);
    o.push_str("<h2>Hour of day (UTC)</h2>");
    if d.history {
        svg::hours(&mut o, &d.hours);
    } else {
        o.push_str("<p class=\"none\">needs the history database</p>");
    }
    o.push_str("<h2>Where they come from</h2>");
    if let Some(note) = &d.geo_note {
        let _ = write!(o, "<p class=\"warn\">{}</p>", esc(note));
    }
    svg::map(&mut o, &d.countries, &d.dots);
    if !d.has_city && d.geo_note.is_none() {
        o.push_str("<p class=\"none\">no city database: countries only, no dots</p>");
    }
    o.push_str("<div class=\"grid\"><div><h2>Countries</h2>");
    let rows: Vec<(String, u64, String)> = d
        .countries
        .iter()
        .take(15)
        .map(|c| (c.key.clone(), c.addrs, format!("{}: {} addresses, {} events", c.key, c.addrs, c.events)))
        .collect();
    bars_or_none(&mut o, &rows, "no country known");
    o.push_str("</div><div><h2>Networks</h2>");
    let rows: Vec<(String, u64, String)> = d
        .networks
        .iter()
        .take(15)
        .map(|c| (c.key.clone(), c.addrs, format!("{}: {} addresses, {} events", c.key, c.addrs, c.events)))
        .collect();
    bars_or_none(&mut o, &rows, "no network known");
    o.push_str("</div><div><h2>User names tried</h2>");
    let rows: Vec<(String, u64, String)> = d
        .users
        .iter()
        .map(|(u, n)| {
            let s = printable(u);
            (s.clone(), *n, format!("{s}: {n}"))
        })
        .collect();
    bars_or_none(&mut o, &rows, "no user names");
    if d.users_rest > 0 {
        let _ = write!(o, "<p class=\"none\">and {} tries of other names</p>", d.users_rest);
    }
    o.push_str("</div><div><h2>Rule mix</h2>");
    let rows: Vec<(String, u64, String)> =
        d.rules.iter().map(|(r, n)| (r.clone(), *n, format!("{r}: {n} events"))).collect();
    bars_or_none(&mut o, &rows, "no events");
    o.push_str("</div></div>");
    tables(&mut o, d);
    coverage(&mut o, d);
    o.push_str("</body></html>\n");
    o
}

/// Attacker bytes as printable text without HTML escaping (for the
/// terminal, JSON, and labels escaped later): control characters and
/// invalid UTF-8 as `\xNN`.
pub fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(&printable_bytes(b)).into_owned()
}

fn printable_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                for x in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("\\x{x:02x}").as_bytes());
                }
            } else {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        for x in chunk.invalid() {
            out.extend_from_slice(format!("\\x{x:02x}").as_bytes());
        }
    }
    out
}

fn bars_or_none(o: &mut String, rows: &[(String, u64, String)], none: &str) {
    if rows.is_empty() {
        let _ = write!(o, "<p class=\"none\">{none}</p>");
    } else {
        svg::bars(o, rows);
    }
}

fn cards(o: &mut String, d: &Data) {
    let t = &d.totals;
    o.push_str("<div class=\"cards\">");
    for (label, v) in [
        ("addresses seen", t.seen),
        ("listed", t.listed),
        ("manual bans", t.manual),
        ("new in 24 h", t.new_24h),
        ("new in 7 days", t.new_7d),
        ("new in 30 days", t.new_30d),
        ("events", t.events),
    ] {
        let _ = write!(o, "<div class=\"card\"><b>{v}</b>{label}</div>");
    }
    o.push_str("</div>");
    if d.logins.is_empty() {
        o.push_str("<div class=\"ok\">No address that was ever listed has logged in.</div>");
    } else {
        let _ = write!(
            o,
            "<div class=\"alarm\">INTRUSION ALARM: {} address{} that {} listed logged in successfully (see “Logins of listed addresses”).</div>",
            d.logins.len(),
            if d.logins.len() == 1 { "" } else { "es" },
            if d.logins.len() == 1 { "was" } else { "were" }
        );
    }
}

fn timelines(o: &mut String, d: &Data) {
    o.push_str("<h2>Over time</h2><div class=\"tabs\">");
    o.push_str("<input type=\"radio\" name=\"tl\" id=\"tab-d\" checked><input type=\"radio\" name=\"tl\" id=\"tab-m\"><input type=\"radio\" name=\"tl\" id=\"tab-y\">");
    o.push_str(
        "<label for=\"tab-d\">days</label> <label for=\"tab-m\">months</label> <label for=\"tab-y\">years</label>",
    );
    for (class, p) in [("p-d", &d.by_day), ("p-m", &d.by_month), ("p-y", &d.by_year)] {
        let _ = write!(o, "<div class=\"pane {class}\">");
        svg::timeline(o, p);
        o.push_str("</div>");
    }
    o.push_str("</div><p class=\"legend\"><span style=\"background:#9db8d9\"></span>events<span style=\"background:#e4683f\"></span>new addresses<span style=\"background:#3b1f8f\"></span>newly listed</p>");
}

fn place(p: &crate::geo::Place) -> (String, String) {
    let c = match (&p.country, &p.city) {
        (Some(c), Some(city)) => format!("{} ({})", esc(c), esc(city)),
        (Some(c), None) => esc(c),
        _ => String::new(),
    };
    (c, esc(&p.network().unwrap_or_default()))
}

/// Rows of the logins table: the newest (a year of alarms would otherwise
/// grow the page without bound).
pub const LOGIN_ROWS: usize = 100;

fn tables(o: &mut String, d: &Data) {
    o.push_str("<h2>Reporting hosts</h2>");
    if d.hosts.is_empty() {
        o.push_str("<p class=\"none\">needs the history database</p>");
    } else {
        o.push_str("<table><tr><th>host</th><th class=\"n\">events</th><th class=\"n\">addresses</th></tr>");
        for h in &d.hosts {
            let name = if h.host.is_empty() { "(none)".to_string() } else { esc_bytes(&h.host) };
            let _ =
                write!(o, "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>", h.events, h.addrs);
        }
        o.push_str("</table>");
    }
    for (title, rows) in [("Top offenders", &d.offenders), ("Newest bans", &d.newest)] {
        let _ = write!(
            o,
            "<h2>{title}</h2><table><tr><th>address</th><th class=\"n\">events</th><th>rules</th><th>country</th><th>network</th><th>first</th><th>last</th><th>listed</th></tr>"
        );
        for r in rows.iter() {
            let (c, n) = place(&r.place);
            let _ = write!(
                o,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td><td>{c}</td><td>{n}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.addr),
                r.events,
                esc(&r.rules),
                iso(r.first),
                iso(r.last),
                r.listed.map(iso).unwrap_or_else(|| "-".into())
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Logins of listed addresses</h2>");
    if d.logins.is_empty() {
        o.push_str("<p class=\"none\">none</p>");
    } else {
        o.push_str(
            "<table><tr><th>address</th><th>user</th><th>host</th><th class=\"n\">logins</th><th>last</th></tr>",
        );
        for l in d.logins.iter().take(LOGIN_ROWS) {
            let _ = write!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&l.addr),
                esc_bytes(&l.user),
                esc_bytes(&l.host),
                l.count,
                iso(l.last)
            );
        }
        o.push_str("</table>");
        if d.logins.len() > LOGIN_ROWS {
            let _ = write!(
                o,
                "<p class=\"none\">the newest {LOGIN_ROWS} of {} shown; <code>badguys stats --json</code> lists them all</p>",
                d.logins.len()
            );
        }
    }
    o.push_str("<h2>Manual bans</h2>");
    if d.manual.is_empty() {
        o.push_str("<p class=\"none\">none</p>");
    } else {
        o.push_str("<table><tr><th>network</th><th>since</th><th>until</th><th>reason</th></tr>");
        for m in &d.manual {
            let _ = write!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.net),
                iso(m.since),
                m.until.map(iso).unwrap_or_else(|| "never".into()),
                esc(&m.reason)
            );
        }
        o.push_str("</table>");
    }
}

fn coverage(o: &mut String, d: &Data) {
    o.push_str("<h2>What this covers</h2><ul>");
    match d.span {
        Some((a, b)) => {
            let _ = write!(o, "<li>history: {} to {} ({} days)</li>", day(a), day(b), b - a + 1);
        }
        None if d.history => o.push_str("<li>history: empty</li>"),
        None => o.push_str("<li>history: none (state only)</li>"),
    }
    let _ = write!(o, "<li>reporting hosts: {}</li>", d.hosts.len());
    for a in &d.attributions {
        let _ = write!(
            o,
            "<li>geolocation: {} ({}, {}), built {}: {}{}</li>",
            esc(&a.path.display().to_string()),
            esc(&a.database_type),
            a.kinds.names(),
            day(a.built.div_euclid(86_400)),
            esc(&a.licence),
            if a.stale { " <b>(over 90 days old: update it)</b>" } else { "" }
        );
    }
    if let Some(n) = &d.geo_note {
        let _ = write!(o, "<li>geolocation: {}</li>", esc(n));
    }
    o.push_str("<li>map: Natural Earth (public domain)</li></ul>");
}

fn day(d: i64) -> String {
    iso(d * 86_400).chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_bad_utf8() {
        assert_eq!(esc("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
        assert_eq!(esc_bytes(b"a\xffb\n<"), "a\\xffb\\x0a&lt;");
        assert_eq!(esc_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn the_logins_table_is_bounded_and_the_alarm_counts_them_all() {
        let mut d = Data::default();
        for i in 0..LOGIN_ROWS as i64 + 50 {
            d.logins.push(crate::store::history::LoginRow {
                addr: format!("192.0.2.{}", i % 250),
                user: b"deploy".to_vec(),
                host: b"gw".to_vec(),
                count: 1,
                last: 1_700_000_000 - i,
            });
        }
        let html = render(&d, None);
        assert_eq!(html.matches("<td>deploy</td>").count(), LOGIN_ROWS);
        assert!(html.contains(&format!("the newest {LOGIN_ROWS} of {} shown", LOGIN_ROWS + 50)));
        assert!(html.contains(&format!("INTRUSION ALARM: {} addresses", LOGIN_ROWS + 50)));
    }
}
