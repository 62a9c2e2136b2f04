//! `rtse proxy`: a fault-injecting RFC 1006 relay between two real MTAs,
//! with the live Turn timeline.
//!
//! ```text
//!  initiating MTA ──leg A──▶ rtse proxy ──leg B──▶ responding MTA
//!                            │  pumps (relay.rs): TPKT framing, FaultPlan (fault.rs)
//!                            └▶ observer (observe.rs): codec → tracker → live lines,
//!                               pcapng of both legs, timeline JSON/SVG
//! ```
//!
//! Three parts, each replaceable on its own:
//! * [`fault`]: the sans-IO [`FaultPlan`](fault::FaultPlan): fed the
//!   Turn-relevant PDU names of each TPKT with its sender, it answers
//!   forward, drop before/after (FIN, RST, forged session AB, mid-TPKT
//!   cut), withhold or delay. Rules `--drop after:GTC#2:rst`, random drops
//!   `--drop-rate 0.05 --seed 7`, or a TOML file.
//! * [`relay`]: std threads and blocking sockets, two pumps per connection;
//!   the only code that touches sockets.
//! * [`observe`](self::observe): one thread (the caller's) that owns the
//!   timeline [`Engine`](crate::timeline::Engine): the Turn tracker and
//!   the association linker are the same that `rtse timeline` uses; no Turn
//!   rule lives here.
//!
//! See docs/proxy.md.
#![forbid(unsafe_code)]

pub mod bench;
pub mod fault;
pub mod observe;
pub mod relay;
pub mod splice;

use crate::cli::{exit, ColorArg};
use clap::Args;
use fault::{DropKind, FaultPlan, RandomFaults, Rule, RulesFile};
use relay::{RelayConfig, Shared};
use std::io::Write;
use std::net::{TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages in flight from the pumps to the observer at most: each holds
/// at most one read buffer (256 KiB), so at most 64 MiB wait; a pump whose
/// message does not fit waits (and stops reading: TCP flow control).
const CHANNEL: usize = 256;

/// Set by the binary's SIGINT handler: the proxy stops, closes its
/// connections (FIN), prints the summary and writes its files.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub const PROXY_HELP: &str = "A fault-injecting RFC 1006 relay between two real MTAs, with the live Turn \
timeline.\n\n\
Accepts connections on --listen and relays each to --to. Both directions are decoded live (TPKT, X.224, \
session, presentation, ACSE, RTSE, P1) and each association is followed by the Turn tracker; a recovery \
on a new connection is linked to the association it recovers. One line per Turn-relevant PDU with the \
holder after it; anomalies (turn-lost, two-holders, please-unanswered, ...) and injected faults are \
highlighted as they happen; a summary at exit (ctrl-c, --exit-after, --exit-idle).\n\n\
Faults:\n  --drop WHEN:PDU[@SIDE][#N[+]][:KIND]   WHEN before|after, KIND rst (default), fin, abort (forged \
session AB), mid-tpkt (before only)\n  --withhold PDU[@SIDE][#N[+]]           swallow the PDU, keep the connection\n  \
--delay PDU[@SIDE][#N[+]]:MS           hold it MS milliseconds\n  --drop-rate P --seed S [--drop-kinds rst,fin]  \
random drops before or after Turn-relevant PDUs\n  --rules FILE                           the same in TOML (docs/proxy.md)\n\
PDU is a tracker event name: CN AC GTC GTA PT GT AS AR DT MIP MIA AE AEA AI AD FN DN AB LABEL ...; #N the N-th \
such PDU of the run (default 1), #N+ every one from the N-th.\n\n\
Relay: --relay copy (default: read/write), splice (Linux splice(2)/tee(2)) or auto (copy, then splice \
for bulk data); the same octets and output either way.\n\n\
Outputs: --pcapng FILE (both legs of every connection, frame numbers as in the live lines), --timeline \
json=PATH or text=PATH (as `rtse timeline --format json|text`), --svg PATH.\n\n\
Exit codes: 0 normal end; 2 usage or I/O error; 3 with --fail-on-anomaly, an anomaly was seen.\n\n\
Examples:\n  rtse proxy --listen 127.0.0.1:10102 --to mta-b.example:102 --drop after:GTC\n  \
rtse proxy --listen 0.0.0.0:102 --to 10.0.0.2:102 --drop-rate 0.05 --seed 7 --pcapng run.pcapng\n  \
rtse proxy --listen 127.0.0.1:0 --to 127.0.0.1:1102 --rules faults.toml --exit-after 4 --timeline json=t.json";

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to accept the initiating MTA's connections on (port 0 picks one; the first line names it).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    /// The responding MTA.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Drop the connection before or after a PDU: WHEN:PDU[@SIDE][#N[+]][:KIND] (repeatable).
    #[arg(long, value_name = "SPEC")]
    pub drop: Vec<String>,
    /// Swallow a PDU: PDU[@SIDE][#N[+]] (repeatable).
    #[arg(long, value_name = "SPEC")]
    pub withhold: Vec<String>,
    /// Hold a PDU: PDU[@SIDE][#N[+]]:MS (repeatable).
    #[arg(long, value_name = "SPEC")]
    pub delay: Vec<String>,
    /// Probability of a random drop at each Turn-relevant PDU.
    #[arg(long, value_name = "P")]
    pub drop_rate: Option<f64>,
    /// Seed of the random drops (decimal or 0x hex).
    #[arg(long, value_name = "SEED", value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Kinds random drops draw from.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub drop_kinds: Vec<String>,
    /// Inject at most this many faults in the run.
    #[arg(long, value_name = "N")]
    pub max_faults: Option<u64>,
    /// Fault rules in TOML (see docs/proxy.md); added to the command-line rules.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Write both legs of every connection to this pcapng.
    #[arg(long, value_name = "FILE")]
    pub pcapng: Option<PathBuf>,
    /// Write the timeline at exit: json=PATH or text=PATH (repeatable).
    #[arg(long, value_name = "FORMAT=PATH")]
    pub timeline: Vec<String>,
    /// Draw the associations as an SVG at exit.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Only faults, anomalies and the summary (no line per PDU).
    #[arg(long, short)]
    pub quiet: bool,
    /// Stop once this many connections have ended and none is open.
    #[arg(long, value_name = "N")]
    pub exit_after: Option<u64>,
    /// Stop after this many seconds with no connection open and no octet relayed.
    #[arg(long, value_name = "SECONDS")]
    pub exit_idle: Option<f64>,
    /// Close a connection after this many seconds without an octet either way.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub idle: f64,
    /// Connections beyond which new ones are closed at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_conns: usize,
    /// Exit 3 when an anomaly was seen.
    #[arg(long)]
    pub fail_on_anomaly: bool,
    /// How octets cross the proxy: copy (read/write, portable), splice (Linux splice(2)/tee(2), one copy
    /// fewer, two system calls more), auto (copy, then splice once a connection carries bulk data). Same
    /// octets, same output; `rtse bench proxy` measures copy against splice.
    #[arg(long, value_enum, default_value_t = relay::RelayMode::Copy)]
    pub relay: relay::RelayMode,
    /// A please to an idle holder unanswered this long is `please-unanswered`.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub please_timeout: f64,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

/// The fault plan the arguments describe.
pub fn plan_of(a: &ProxyArgs) -> Result<FaultPlan, String> {
    let mut rules = Vec::new();
    let file = match &a.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            RulesFile::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => RulesFile::default(),
    };
    for r in &file.rule {
        rules.push(r.to_rule()?);
    }
    for s in &a.drop {
        rules.push(Rule::parse_drop(s)?);
    }
    for s in &a.withhold {
        rules.push(Rule::parse_withhold(s)?);
    }
    for s in &a.delay {
        rules.push(Rule::parse_delay(s)?);
    }
    let rate = a.drop_rate.or(file.drop_rate);
    if let Some(r) = rate {
        if !(0.0..=1.0).contains(&r) {
            return Err(format!("--drop-rate {r}: a probability is between 0 and 1"));
        }
    }
    let kind_names =
        if a.drop_kinds.is_empty() { file.drop_kinds.clone().unwrap_or_default() } else { a.drop_kinds.clone() };
    let kinds = if kind_names.is_empty() {
        DropKind::ALL.to_vec()
    } else {
        kind_names.iter().map(|k| DropKind::parse(k)).collect::<Result<Vec<_>, _>>()?
    };
    let random = rate.map(|rate| RandomFaults { rate, seed: a.seed.or(file.seed).unwrap_or(0), kinds });
    Ok(FaultPlan::new(rules, random, a.max_faults.or(file.max_faults)))
}

enum TimelineOut {
    Json(PathBuf),
    Text(PathBuf),
}

fn timeline_outs(specs: &[String]) -> Result<Vec<TimelineOut>, String> {
    specs
        .iter()
        .map(|s| match s.split_once('=') {
            Some(("json", p)) => Ok(TimelineOut::Json(p.into())),
            Some(("text", p)) => Ok(TimelineOut::Text(p.into())),
            _ => Err(format!("--timeline {s:?}: expected json=PATH or text=PATH")),
        })
        .collect()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() && s > 0.0 { s.min(1e9) } else { 0.0 })
}

/// `rtse proxy`.
pub fn run(a: &ProxyArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use std::io::IsTerminal;
    let fail = |err: &mut dyn Write, e: String| {
        let _ = writeln!(err, "rtse proxy: {e}");
        exit::USAGE
    };
    let plan = match plan_of(a) {
        Ok(p) => p,
        Err(e) => return fail(err, e),
    };
    let outs = match timeline_outs(&a.timeline) {
        Ok(o) => o,
        Err(e) => return fail(err, e),
    };
    let upstream = match a.to.to_socket_addrs().map(|mut i| i.next()) {
        Ok(Some(u)) => u,
        Ok(None) => return fail(err, format!("--to {}: no address", a.to)),
        Err(e) => return fail(err, format!("--to {}: {e}", a.to)),
    };
    let listener = match TcpListener::bind(&a.listen) {
        Ok(l) => l,
        Err(e) => return fail(err, format!("--listen {}: {e}", a.listen)),
    };
    let pcap = match &a.pcapng {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(f),
            Err(e) => return fail(err, format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let color = match a.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    let local = listener.local_addr().map(|l| l.to_string()).unwrap_or_else(|_| a.listen.clone());
    let _ = writeln!(out, "rtse proxy: listening on {local}, relaying to {upstream}");
    for r in plan.rules() {
        let _ = writeln!(out, "  fault rule {r}");
    }
    if let Some(r) = a.drop_rate {
        let _ = writeln!(out, "  random drops at rate {r}, seed {}", a.seed.unwrap_or(0));
    }
    let _ = out.flush();

    let mut settings = crate::timeline::Settings::default();
    settings.tracker.please_max_ns = Some(secs(a.please_timeout).as_nanos() as u64).filter(|&n| n > 0);
    let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL);
    let cfg = RelayConfig {
        upstream,
        idle: secs(a.idle).max(Duration::from_millis(100)),
        max_conns: a.max_conns.max(1),
        connect_timeout: Duration::from_secs(5),
        mode: a.relay,
    };
    let shared = Shared::new(cfg, plan, tx);
    let mut obs = match observe::Observer::new(settings, pcap, out, crate::timeline::text::Style { color }) {
        Ok(o) => o,
        Err(e) => return fail(err, format!("pcapng: {e}")),
    };
    obs.set_verbose_rows(!a.quiet);
    let acceptor = {
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || relay::accept_loop(&sh, &listener))
    };
    let exit_idle = a.exit_idle.map(secs);
    let mut stopping: Option<Instant> = None;
    let mut ticked = Instant::now();
    loop {
        if ticked.elapsed() >= Duration::from_millis(250) {
            ticked = Instant::now();
            obs.tick();
            // Live lines wait at most this long while messages keep coming.
            obs.flush();
        }
        let next = match rx.try_recv() {
            Ok(m) => Ok(m),
            Err(_) => {
                // Nothing waiting: what was printed goes out before the wait.
                obs.flush();
                rx.recv_timeout(Duration::from_millis(50))
            }
        };
        match next {
            Ok(m) => {
                obs.handle(m);
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(t) = stopping {
            // Drained once every pump has stopped (or after 5 s).
            if shared.pumps.load(Ordering::SeqCst) == 0 || t.elapsed() > Duration::from_secs(5) {
                while let Ok(m) = rx.try_recv() {
                    obs.handle(m);
                }
                break;
            }
            continue;
        }
        let quiet = shared.live() == 0 && shared.pumps.load(Ordering::SeqCst) == 0;
        let done = INTERRUPTED.load(Ordering::Relaxed)
            || a.exit_after.is_some_and(|n| quiet && shared.ended.load(Ordering::Relaxed) >= n)
            || exit_idle.is_some_and(|d| quiet && shared.idle_ms() >= d.as_millis() as u64);
        if done {
            shared.stop.store(true, Ordering::SeqCst);
            shared.close_all();
            stopping = Some(Instant::now());
        }
    }
    let _ = acceptor.join();
    let (totals, reported, not_kept, pcap_err) = obs.finish();
    summary(&totals, out);
    // Every fault the plan decided is applied and logged, but for one kind
    // of race: a delay whose connection was closed (and the close logged)
    // while the TPKT waited. Say so rather than leave a rule silently used.
    let decided = shared.faults_decided();
    let unlogged = decided.saturating_sub(totals.faults.len() as u64);
    if unlogged > 0 {
        let _ = writeln!(out, "faults decided but not applied: {unlogged} (their connection closed first)");
    }
    let mut code = exit::OK;
    if let Some(e) = pcap_err {
        let _ = writeln!(err, "rtse proxy: pcapng: {e}");
        code = exit::USAGE;
    }
    for o in &outs {
        let r = match o {
            TimelineOut::Json(p) => {
                let doc = serde_json::json!({ "associations": reported });
                std::fs::write(p, format!("{doc}\n")).map_err(|e| format!("{}: {e}", p.display()))
            }
            TimelineOut::Text(p) => {
                let st = crate::timeline::text::Style { color: false };
                let text: String =
                    reported.iter().map(|a| format!("{}\n", crate::timeline::text::association(a, st))).collect();
                std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
            }
        };
        if let Err(e) = r {
            let _ = writeln!(err, "rtse proxy: {e}");
            code = exit::USAGE;
        }
    }
    if let Some(p) = &a.svg {
        if let Err(e) = std::fs::write(p, crate::timeline::svg::document(&reported, not_kept)) {
            let _ = writeln!(err, "rtse proxy: {}: {e}", p.display());
            code = exit::USAGE;
        }
    }
    if code == exit::OK && a.fail_on_anomaly && !totals.anomalies.is_empty() {
        code = exit::ANOMALY;
    }
    code
}

/// The summary printed at exit.
pub fn summary(t: &observe::Totals, out: &mut dyn Write) {
    let _ = writeln!(out, "── rtse proxy summary");
    let _ = writeln!(
        out,
        "connections {} ({} upstream failures), associations {} ({} recovered), octets initiator->responder {} responder->initiator {}, Turn rows {}",
        t.connections, t.connect_failures, t.associations, t.recoveries, t.octets[0], t.octets[1], t.rows
    );
    let _ = writeln!(out, "faults injected: {}", t.faults.len());
    for f in &t.faults {
        let _ = writeln!(
            out,
            "  c{} frame {} from the {}: {} {} [{}]",
            f.conn,
            f.frame,
            f.from.name(),
            f.effect,
            f.pdus.join(","),
            f.why
        );
    }
    if t.anomalies.is_empty() {
        let _ = writeln!(out, "anomalies: none");
    } else {
        let kinds: Vec<String> = t.anomalies.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "anomalies: {}", kinds.join(", "));
        for (id, kind, frame, detail) in &t.anomaly_list {
            let _ = writeln!(out, "  #{id} {} at frame {frame}: {detail}", kind.name());
        }
    }
    if t.unframed > 0 || t.malformed > 0 {
        let _ = writeln!(
            out,
            "{} direction(s) stopped framing as TPKTs, {} PDU(s) did not decode",
            t.unframed, t.malformed
        );
    }
    let _ = out.flush();
}
