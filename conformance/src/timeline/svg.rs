//! SVG sequence diagrams of timelines, written by hand (no dependency).
//!
//! One panel per association, stacked by id: the initiator's and the
//! responder's lifelines, one arrow per row (PDUs above it), the Turn
//! holder shaded along the lifeline that holds it (in transit: hatched
//! between the two; unknown: grey on both), transport losses as a red
//! cross-bar, gaps as a zigzag, anomalies in red (the row's arrow, the kinds
//! beside it, the details under the panel), long pauses as a break in the
//! time axis, and a dashed arrow in the margin from a lost association to
//! the one that recovers it.

use super::text::{clock, date};
use super::{Association, Event};
use crate::tracker::{Side, TurnHolder};
use std::collections::HashMap;
use std::fmt::Write as _;

const W: f64 = 1040.0;
const X_I: f64 = 300.0;
const X_R: f64 = 640.0;
const ROW: f64 = 26.0;
const BREAK: f64 = 22.0;
const BAND: f64 = 14.0;
const HEAD: f64 = 92.0;
const LINK_X: f64 = W - 22.0;
const C_I: &str = "#2f6fdb";
const C_R: &str = "#1f9d55";
const C_T: &str = "#e0a100";
const C_U: &str = "#9aa0a6";
const C_BAD: &str = "#d93025";
/// A pause longer than this breaks the time axis.
const PAUSE_NS: u64 = 1_000_000_000;
/// Rows drawn per association at most.
const MAX_DRAWN_ROWS: usize = 400;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n.saturating_sub(1)).collect();
        format!("{t}…")
    }
}

fn x_of(side: Side) -> f64 {
    match side {
        Side::Initiator => X_I,
        Side::Responder => X_R,
    }
}

fn is_transport(e: &Event) -> bool {
    e.pdus.iter().all(|p| p.starts_with("T-"))
}

fn pause_text(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 120.0 {
        format!("{s:.1} s later")
    } else if s < 7200.0 {
        format!("{:.1} min later", s / 60.0)
    } else {
        format!("{:.1} h later", s / 3600.0)
    }
}

/// Where each row of a panel sits.
struct Layout {
    ys: Vec<f64>,
    breaks: Vec<(f64, u64)>,
    end: f64,
}

fn layout(a: &Association, top: f64) -> Layout {
    let mut y = top + HEAD;
    let mut ys = Vec::new();
    let mut breaks = Vec::new();
    let mut prev: Option<u64> = None;
    for e in a.events.iter().take(MAX_DRAWN_ROWS) {
        let t = e.time.map(|t| t.as_nanos());
        if let (Some(p), Some(t)) = (prev, t) {
            if t > p + PAUSE_NS {
                breaks.push((y - ROW / 2.0 + BREAK / 2.0, t - p));
                y += BREAK;
            }
        }
        prev = t.or(prev);
        ys.push(y);
        y += ROW;
    }
    Layout { ys, breaks, end: y }
}

fn panel_height(a: &Association) -> f64 {
    let l = layout(a, 0.0);
    let notes = a.anomalies.len().min(12) as f64 * 16.0 + if a.anomalies.is_empty() { 0.0 } else { 22.0 };
    l.end + notes + 24.0
}

/// An SVG document drawing `assocs` (sorted by id); `not_drawn` more were
/// left out.
pub fn document(assocs: &[Association], not_drawn: usize) -> String {
    let mut assocs: Vec<&Association> = assocs.iter().collect();
    assocs.sort_by_key(|a| a.id);
    let legend_h = 64.0;
    let mut tops = Vec::new();
    let mut y = legend_h;
    for a in &assocs {
        tops.push(y);
        y += panel_height(a);
    }
    let height = y + if not_drawn > 0 { 30.0 } else { 10.0 };
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<defs>
<pattern id="transit" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#fff6d6"/><rect width="4" height="8" fill="{C_T}" opacity="0.55"/></pattern>
<pattern id="unknown" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="6" height="6" fill="#f1f3f4"/><rect width="2" height="6" fill="{C_U}"/></pattern>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>
<marker id="arrowbad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{C_BAD}"/></marker>
<marker id="arrowlink" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7b1fa2"/></marker>
</defs>
<rect width="100%" height="100%" fill="white"/>
"##
    );
    legend(&mut s);
    let mut cn_y: HashMap<u32, f64> = HashMap::new();
    let mut end_y: HashMap<u32, f64> = HashMap::new();
    for (a, &top) in assocs.iter().zip(&tops) {
        let (cn, end) = panel(&mut s, a, top);
        cn_y.insert(a.id, cn);
        end_y.insert(a.id, end);
    }
    // Recovery links, in the right margin.
    for a in &assocs {
        if let Some(old) = a.recovers {
            if let (Some(&y0), Some(&y1)) = (end_y.get(&old), cn_y.get(&a.id)) {
                let mid = (y0 + y1) / 2.0;
                let _ = writeln!(
                    s,
                    r##"<path d="M{x0},{y0} C{x1},{y0} {x1},{y1} {x0},{y1}" fill="none" stroke="#7b1fa2" stroke-width="2" stroke-dasharray="6 4" marker-end="url(#arrowlink)"/>
<text x="{tx}" y="{mid}" fill="#7b1fa2" font-weight="bold" text-anchor="end" transform="rotate(-90 {tx} {mid})">#{id} recovers #{old}</text>"##,
                    x0 = LINK_X - 60.0,
                    x1 = LINK_X + 8.0,
                    tx = LINK_X + 14.0,
                    id = a.id,
                );
            }
        }
    }
    if not_drawn > 0 {
        let _ = writeln!(
            s,
            r##"<text x="20" y="{}" fill="#555">… {not_drawn} more associations not drawn (see the text or JSON output)</text>"##,
            height - 12.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn legend(s: &mut String) {
    let items: [(&str, &str); 4] = [
        (C_I, "initiator holds the Turn"),
        (C_R, "responder holds the Turn"),
        ("url(#transit)", "Turn in transit (GTC sent, no GTA)"),
        ("url(#unknown)", "holder unknown (not captured)"),
    ];
    let _ = writeln!(s, r##"<text x="20" y="22" font-size="15" font-weight="bold">RTSE Turn timeline</text>"##);
    let mut x = 20.0;
    for (fill, label) in items {
        let _ = writeln!(
            s,
            r##"<rect x="{x}" y="36" width="14" height="14" fill="{fill}" opacity="{}"/><text x="{}" y="47">{}</text>"##,
            if fill.starts_with('#') { 0.45 } else { 1.0 },
            x + 20.0,
            esc(label)
        );
        x += 26.0 + label.len() as f64 * 6.6;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{x}" y1="43" x2="{}" y2="43" stroke="{C_BAD}" stroke-width="3"/><text x="{}" y="47" fill="{C_BAD}">drop / anomaly</text>"##,
        x + 18.0,
        x + 24.0
    );
}

/// Draws one panel; returns the y of its CN row (or top) and of its last row.
fn panel(s: &mut String, a: &Association, top: f64) -> (f64, f64) {
    let l = layout(a, top);
    let h = panel_height(a);
    let bad = !a.anomalies.is_empty();
    let _ = writeln!(
        s,
        r##"<g><rect x="8" y="{}" width="{}" height="{}" rx="8" fill="{}" stroke="{}" stroke-width="{}"/>"##,
        top + 4.0,
        W - 16.0 - 40.0,
        h - 12.0,
        if bad { "#fff8f7" } else { "#fbfbfd" },
        if bad { C_BAD } else { "#d0d4da" },
        if bad { 1.5 } else { 1.0 }
    );
    // Header.
    let mut title = format!("association #{}", a.id);
    if let Some(e) = &a.endpoints {
        title.push_str(&format!("   {e}"));
    }
    let mut facts = Vec::new();
    facts.push(
        match a.mode {
            Some(crate::tracker::Mode::Normal) => "normal mode",
            Some(crate::tracker::Mode::X410) => "X.410-1984 mode",
            None => "mode not seen",
        }
        .to_string(),
    );
    if let Some(d) = a.info.dialogue {
        facts.push(
            match d {
                crate::tracker::Dialogue::Twa => "two-way alternate",
                crate::tracker::Dialogue::Monologue => "monologue",
            }
            .into(),
        );
    }
    if let Some(r) = a.recovers {
        facts.push(format!("recovers #{r}"));
    }
    if let Some(r) = a.info.recovered_by {
        facts.push(format!("recovered by #{r}"));
    }
    if let Some(t) = a.events.iter().find_map(|e| e.time) {
        facts.push(format!("{} UTC", date(t)));
    }
    if a.info.mid_stream {
        facts.push("capture starts mid-connection".into());
    }
    let _ = writeln!(
        s,
        r##"<text x="22" y="{}" font-size="14" font-weight="bold">{}</text><text x="22" y="{}" fill="#444">{}</text>"##,
        top + 24.0,
        esc(&title),
        top + 42.0,
        esc(&facts.join(" · "))
    );
    if bad {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" fill="{C_BAD}" font-weight="bold" text-anchor="end">{} anomal{}</text>"##,
            W - 70.0,
            top + 24.0,
            a.anomalies.len(),
            if a.anomalies.len() == 1 { "y" } else { "ies" }
        );
    }
    // Lifeline heads.
    let y_head = top + HEAD - 30.0;
    for (x, who, addr, col) in [(X_I, "initiator", &a.initiator, C_I), (X_R, "responder", &a.responder, C_R)] {
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{}" width="150" height="30" rx="5" fill="white" stroke="{col}" stroke-width="1.5"/><text x="{x}" y="{}" text-anchor="middle" font-weight="bold" fill="{col}">{who}</text><text x="{x}" y="{}" text-anchor="middle" font-size="10" fill="#555">{}</text>"##,
            x - 75.0,
            y_head - 8.0,
            y_head + 5.0,
            y_head + 17.0,
            esc(addr.as_deref().unwrap_or("")),
        );
    }
    let (y0, y1) = (top + HEAD - 8.0, l.end - ROW / 2.0);
    // Turn shading: row i's holder from its y to the next row's.
    let n = l.ys.len();
    for i in 0..n {
        let (Some(e), Some(&ya)) = (a.events.get(i), l.ys.get(i)) else { continue };
        let yb = l.ys.get(i + 1).copied().unwrap_or(ya + ROW / 2.0);
        let hgt = yb - ya;
        let band = |s: &mut String, x: f64, fill: &str, op: f64| {
            let _ = writeln!(
                s,
                r##"<rect x="{}" y="{ya}" width="{BAND}" height="{hgt}" fill="{fill}" opacity="{op}"/>"##,
                x - BAND / 2.0
            );
        };
        match e.turn {
            TurnHolder::Initiator => band(s, X_I, C_I, 0.45),
            TurnHolder::Responder => band(s, X_R, C_R, 0.45),
            TurnHolder::InTransit => {
                let _ = writeln!(
                    s,
                    r##"<rect x="{}" y="{ya}" width="{}" height="{hgt}" fill="url(#transit)" opacity="0.7"/>"##,
                    X_I + BAND / 2.0,
                    X_R - X_I - BAND
                );
            }
            TurnHolder::Unknown => {
                band(s, X_I, "url(#unknown)", 1.0);
                band(s, X_R, "url(#unknown)", 1.0);
            }
            TurnHolder::None => {}
        }
    }
    // Lifelines (over the shading's edges).
    for x in [X_I, X_R] {
        let _ = writeln!(s, r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#555" stroke-width="1.2"/>"##);
    }
    for (y, ns) in &l.breaks {
        for x in [X_I, X_R] {
            let _ = writeln!(
                s,
                r##"<rect x="{}" y="{}" width="30" height="8" fill="white"/><path d="M{},{} l30,-4 M{},{} l30,-4" stroke="#555"/>"##,
                x - 15.0,
                y - 4.0,
                x - 15.0,
                y - 2.0,
                x - 15.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" font-style="italic" fill="#666">⋯ {} ⋯</text>"##,
            (X_I + X_R) / 2.0,
            y + 4.0,
            pause_text(*ns)
        );
    }
    // Rows.
    // Anomalies judged at the end (or by the linker) sit on the last row of
    // their frame.
    let mut last_row: HashMap<u64, usize> = HashMap::new();
    for (i, e) in a.events.iter().take(n).enumerate() {
        last_row.insert(e.frame, i);
    }
    let mut marks: Vec<Vec<&'static str>> =
        a.events.iter().take(n).map(|e| e.anomalies.iter().map(|k| k.name()).collect()).collect();
    let mut shown: HashMap<(u64, &'static str), usize> = HashMap::new();
    for e in a.events.iter().take(n) {
        for k in &e.anomalies {
            *shown.entry((e.frame, k.name())).or_default() += 1;
        }
    }
    for an in &a.anomalies {
        let key = (an.frame, an.kind.name());
        match shown.get_mut(&key) {
            Some(c) if *c > 0 => *c -= 1,
            _ => {
                if let Some(m) = last_row.get(&an.frame).and_then(|&i| marks.get_mut(i)) {
                    m.push(an.kind.name());
                }
            }
        }
    }
    let mut cn = top + HEAD;
    for (i, e) in a.events.iter().take(n).enumerate() {
        let Some(&y) = l.ys.get(i) else { continue };
        let t = e.time.map_or_else(String::new, clock);
        let _ = writeln!(
            s,
            r##"<text x="22" y="{}" fill="#777" font-size="11">{}</text><text x="72" y="{}" fill="#777" font-size="11">{}</text>"##,
            y + 4.0,
            e.frame,
            y + 4.0,
            t
        );
        let kinds = marks.get(i).cloned().unwrap_or_default();
        let bad_row = !kinds.is_empty();
        if e.pdus.contains(&"CN") {
            cn = y;
        }
        if is_transport(e) {
            let after_release = a.events[..i]
                .iter()
                .rev()
                .find(|p| !is_transport(p))
                .is_some_and(|p| p.pdus.iter().any(|x| matches!(*x, "DN" | "RF" | "AB" | "AA")));
            transport_row(s, e, y, after_release);
        } else {
            let (xa, xb) = (x_of(e.from), x_of(e.from.peer()));
            let dir = if xb > xa { 1.0 } else { -1.0 };
            let col = if bad_row { C_BAD } else { "#333" };
            let _ = writeln!(
                s,
                r##"<line x1="{}" y1="{y}" x2="{}" y2="{}" stroke="{col}" stroke-width="{}" marker-end="url(#{})"/>"##,
                xa + dir * (BAND / 2.0 + 1.0),
                xb - dir * (BAND / 2.0 + 2.0),
                y + 6.0,
                if bad_row { 2.2 } else { 1.3 },
                if bad_row { "arrowbad" } else { "arrow" }
            );
            let label = if e.note.is_empty() {
                e.pdus.join(" + ")
            } else {
                format!("{}  {}", e.pdus.join(" + "), short(&e.note, 44))
            };
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="{col}"><tspan font-weight="bold">{}</tspan><title>{}</title></text>"##,
                (X_I + X_R) / 2.0,
                y - 4.0,
                esc(&label),
                esc(&format!("frame {} {} {}: {} {}", e.frame, t, e.from, e.pdus.join(" + "), e.note))
            );
        }
        if bad_row {
            // On a transport row the bar's label is on the right: go above it.
            let y = if is_transport(e) { y - 12.0 } else { y };
            let _ = writeln!(
                s,
                r##"<circle cx="{}" cy="{}" r="8" fill="{C_BAD}"/><text x="{}" y="{}" fill="white" font-weight="bold" text-anchor="middle">!</text><text x="{}" y="{}" fill="{C_BAD}" font-weight="bold">{}</text>"##,
                X_R + 30.0,
                y,
                X_R + 30.0,
                y + 4.0,
                X_R + 44.0,
                y + 4.0,
                esc(&short(&kinds.join(", "), 40))
            );
        }
    }
    if a.events.len() > n {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">… {} more rows not drawn</text>"##,
            (X_I + X_R) / 2.0,
            l.end - 4.0,
            a.events.len() - n
        );
    }
    // Anomaly details.
    let mut y = l.end + 14.0;
    if bad {
        let _ = writeln!(s, r##"<text x="22" y="{y}" fill="{C_BAD}" font-weight="bold">anomalies</text>"##);
        y += 18.0;
        for an in a.anomalies.iter().take(12) {
            let by = an.by.map_or_else(String::new, |b| format!(" by {b}"));
            let line = format!("{} · frame {}{by}: {}", an.kind, an.frame, an.detail);
            let _ = writeln!(
                s,
                r##"<text x="30" y="{y}" fill="{C_BAD}" font-size="11">✗ {}<title>{}</title></text>"##,
                esc(&short(&line, 150)),
                esc(&line)
            );
            y += 16.0;
        }
        if a.anomalies.len() > 12 {
            let _ = writeln!(
                s,
                r##"<text x="30" y="{y}" fill="{C_BAD}" font-size="11">… {} more</text>"##,
                a.anomalies.len() - 12
            );
        }
    }
    let _ = writeln!(s, "</g>");
    (cn, l.ys.last().copied().unwrap_or(top + HEAD))
}

fn transport_row(s: &mut String, e: &Event, y: f64, after_release: bool) {
    let what = e.pdus.first().copied().unwrap_or("");
    let (xa, xb) = (X_I - 60.0, X_R + 60.0);
    match what {
        "T-RST" | "T-FIN" => {
            let label = if what == "T-RST" { "TCP reset" } else { "TCP closed (FIN)" };
            if after_release {
                let _ = writeln!(
                    s,
                    r##"<line x1="{xa}" y1="{y}" x2="{xb}" y2="{y}" stroke="#888" stroke-width="2"/><text x="{xb}" y="{}" fill="#666" dx="6">{label} after the session ended</text>"##,
                    y + 4.0
                );
            } else {
                let _ = writeln!(
                    s,
                    r##"<line x1="{xa}" y1="{y}" x2="{xb}" y2="{y}" stroke="{C_BAD}" stroke-width="3"/><text x="{xb}" y="{}" fill="{C_BAD}" font-weight="bold" dx="6">✕ {label}: association lost</text>"##,
                    y + 4.0
                );
            }
        }
        "T-GAP" => {
            let mut d = format!("M{xa},{y}");
            let mut x = xa;
            let mut up = true;
            while x < xb {
                x += 8.0;
                let _ = write!(d, " L{x},{}", if up { y - 5.0 } else { y + 5.0 });
                up = !up;
            }
            let _ = writeln!(
                s,
                r##"<path d="{d}" fill="none" stroke="{C_U}" stroke-width="2"/><text x="{xb}" y="{}" fill="#555" dx="6">octets not captured ({})</text>"##,
                y + 4.0,
                e.from
            );
        }
        "T-EOF" => {
            let _ = writeln!(
                s,
                r##"<line x1="{xa}" y1="{y}" x2="{xb}" y2="{y}" stroke="{C_U}" stroke-dasharray="3 3"/><text x="{xb}" y="{}" fill="#555" dx="6">capture ends</text>"##,
                y + 4.0
            );
        }
        _ => {
            let _ = writeln!(
                s,
                r##"<line x1="{xa}" y1="{y}" x2="{xb}" y2="{y}" stroke="#bbb" stroke-dasharray="2 3"/><text x="{xb}" y="{}" fill="#777" dx="6">TCP connection opened</text>"##,
                y + 4.0
            );
        }
    }
}
