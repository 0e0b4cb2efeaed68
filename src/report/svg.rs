//! Inline SVG for the report: horizontal bars, timelines, the hour-of-day
//! strip and the world map (outlines from `world.txt`, built once by
//! `scripts/mkmap` from Natural Earth). Tooltips are SVG `<title>`s. Every
//! label passes through [`esc`]; numbers are formatted by us.

use std::fmt::Write;

use super::data::{Dot, Share};
use super::esc;
use crate::store::history::Period;

/// The map outlines: `CC<TAB>path` lines (see scripts/mkmap).
const WORLD: &str = include_str!("world.txt");
/// The map's size in its own units: x = (lon + 180) * 2, y = (84 - lat) * 2.
pub const MAP_W: f64 = 720.0;
pub const MAP_H: f64 = 284.0;

/// Shades from no attackers to the most.
const SHADES: [&str; 6] = ["#e8ecef", "#fde0c5", "#facba6", "#f59e72", "#e4683f", "#b1361e"];

/// The bucket of `n` on a log scale up to `max`.
fn shade(n: u64, max: u64) -> &'static str {
    if n == 0 || max == 0 {
        return SHADES[0];
    }
    let f = ((n as f64).ln_1p() / (max as f64).ln_1p()).clamp(0.0, 1.0);
    SHADES[1 + ((f * 4.999) as usize).min(4)]
}

/// The bucket of `n` on a linear scale up to `max` (hours differ by
/// less than countries do).
fn linear(n: u64, max: u64) -> &'static str {
    if n == 0 || max == 0 {
        return SHADES[0];
    }
    SHADES[1 + ((n as f64 / max as f64 * 4.999) as usize).min(4)]
}

/// The world map with countries shaded by attacking addresses and,
/// where coordinates are known, dots.
pub fn map(out: &mut String, countries: &[Share], dots: &[Dot]) {
    let max = countries.iter().filter(|c| c.key != "??").map(|c| c.addrs).max().unwrap_or(0);
    let _ = write!(
        out,
        r##"<svg id="worldmap" viewBox="0 0 {MAP_W} {MAP_H}" width="100%" role="img" aria-label="World map of attacking addresses"><rect width="{MAP_W}" height="{MAP_H}" fill="#f7fafc"/><g stroke="#fff" stroke-width="0.4">"##
    );
    for line in WORLD.lines().filter(|l| !l.starts_with('#')) {
        let Some((cc, d)) = line.split_once('\t') else { continue };
        let c = countries.iter().find(|s| s.key == cc);
        let (n, ev) = c.map_or((0, 0), |s| (s.addrs, s.events));
        let _ = write!(
            out,
            r#"<path d="{d}" fill="{}"><title>{}: {n} addresses, {ev} events</title></path>"#,
            shade(n, max),
            esc(cc)
        );
    }
    out.push_str("</g>");
    let dmax = dots.iter().map(|d| d.addrs).max().unwrap_or(1).max(1);
    if !dots.is_empty() {
        out.push_str(r##"<g fill="#3b1f8f" fill-opacity="0.55">"##);
        for d in dots {
            let x = (d.lon + 180.0) * 2.0;
            let y = (84.0 - d.lat) * 2.0;
            let r = 0.8 + 3.2 * ((d.addrs as f64).sqrt() / (dmax as f64).sqrt());
            let _ = write!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}"><title>{:.0}°, {:.0}°: {} addresses</title></circle>"#,
                d.lat, d.lon, d.addrs
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

/// Horizontal bars: label, value, tooltip.
pub fn bars(out: &mut String, rows: &[(String, u64, String)]) {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let h = 18.0;
    let height = h * rows.len() as f64 + 2.0;
    let _ = write!(out, r#"<svg class="bars" viewBox="0 0 600 {height}" width="100%">"#);
    for (i, (label, v, tip)) in rows.iter().enumerate() {
        let y = i as f64 * h;
        let w = 360.0 * (*v as f64) / (max as f64);
        let _ = write!(
            out,
            r##"<g><title>{}</title><text x="0" y="{:.1}" font-size="11">{}</text><rect x="170" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#4a7bb7"/><text x="{:.1}" y="{:.1}" font-size="11">{v}</text></g>"##,
            esc(tip),
            y + 13.0,
            esc(&truncate(label, 28)),
            y + 3.0,
            h - 5.0,
            175.0 + w,
            y + 13.0
        );
    }
    out.push_str("</svg>");
}

/// A timeline: events as bars, addresses first seen as a darker inner bar.
pub fn timeline(out: &mut String, periods: &[Period]) {
    if periods.is_empty() {
        out.push_str("<p class=\"none\">no history yet</p>");
        return;
    }
    let max = periods.iter().map(|p| p.events).max().unwrap_or(0).max(1);
    let maxn = periods.iter().map(|p| p.first_seen.max(p.listed)).max().unwrap_or(0).max(1);
    let (w, h) = (900.0, 160.0);
    let bw = w / periods.len() as f64;
    let _ = write!(out, r#"<svg class="timeline" viewBox="0 0 {w} {}" width="100%">"#, h + 18.0);
    for (i, p) in periods.iter().enumerate() {
        let x = i as f64 * bw;
        let eh = h * p.events as f64 / max as f64;
        let nh = h * p.first_seen as f64 / maxn as f64;
        let lh = h * p.listed as f64 / maxn as f64;
        let _ = write!(
            out,
            r##"<g><title>{}: {} events, {} new addresses, {} listed, {} expired, {} unbanned</title><rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{eh:.1}" fill="#9db8d9"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{nh:.1}" fill="#e4683f"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{lh:.1}" fill="#3b1f8f"/></g>"##,
            esc(&p.label),
            p.events,
            p.first_seen,
            p.listed,
            p.expired,
            p.unbanned,
            h - eh,
            (bw - 1.0).max(0.5),
            x + bw * 0.2,
            h - nh,
            (bw * 0.3).max(0.3),
            x + bw * 0.5,
            h - lh,
            (bw * 0.3).max(0.3),
        );
    }
    // First and last labels only: they are enough to read the axis.
    let first = &periods[0].label;
    let last = &periods[periods.len() - 1].label;
    let _ = write!(
        out,
        r#"<text x="0" y="{:.1}" font-size="11">{}</text><text x="{w}" y="{:.1}" font-size="11" text-anchor="end">{}</text></svg>"#,
        h + 14.0,
        esc(first),
        h + 14.0,
        esc(last)
    );
}

/// 24 cells, one per UTC hour, darker with more events.
pub fn hours(out: &mut String, hours: &[u64; 24]) {
    let max = hours.iter().copied().max().unwrap_or(0);
    out.push_str(r#"<svg class="hours" viewBox="0 0 720 44" width="100%">"#);
    for (i, &n) in hours.iter().enumerate() {
        let x = i as f64 * 30.0;
        let _ = write!(
            out,
            r#"<g><title>{i:02}:00–{i:02}:59 UTC: {n} events</title><rect x="{x}" y="0" width="29" height="28" fill="{}"/><text x="{:.0}" y="40" font-size="10" text-anchor="middle">{i:02}</text></g>"#,
            linear(n, max),
            x + 14.5
        );
    }
    out.push_str("</svg>");
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_asset_is_sane() {
        let n = WORLD.lines().filter(|l| !l.starts_with('#')).count();
        assert!(n > 150, "{n} countries");
        assert!(WORLD.len() < 150_000);
        assert!(!WORLD.contains("\nAQ\t"), "Antarctica is dropped");
        assert!(WORLD.contains("\nDE\t") && WORLD.contains("\nXK\t"));
    }

    #[test]
    fn shades_grow() {
        assert_eq!(shade(0, 10), SHADES[0]);
        assert_eq!(shade(10, 10), SHADES[5]);
        assert_ne!(shade(1, 1000), SHADES[5]);
    }
}
