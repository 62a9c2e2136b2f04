//! `rtse run`, `rtse cases` and `rtse serve`: argument definitions and the
//! functions behind them.

use super::case::{self, Case};
use super::declare::{grade, Declaration, Grade};
use super::iut::{InProcessIut, Iut};
use super::report::{Report, Row};
use super::run::{run_case, Capabilities, CaseResult, Verdict};
use crate::cli::exit;
use crate::flaw::Flaw;
use clap::{Args, Subcommand, ValueEnum};
use rtse_codec::presentation::Mode;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// RTSE mode argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeOpt {
    /// X.228 normal mode.
    Normal,
    /// X.410-1984 mode.
    X410,
}

impl ModeOpt {
    /// The codec's mode.
    #[must_use]
    pub const fn mode(self) -> Mode {
        match self {
            ModeOpt::Normal => Mode::Normal,
            ModeOpt::X410 => Mode::X410,
        }
    }
}

/// Who gets the Turn when an association opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TurnOpt {
    Initiator,
    Responder,
}

/// When to colour the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorOpt {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Cases to run: ids, area or group prefixes (`turn`, `turn.recovery`), or globs (`*.field-failure*`).
    #[arg(value_name = "CASE")]
    pub cases: Vec<String>,
    /// Implementation under test: `reference`, `flaw:NAME`, or `tcp://HOST:PORT` (an RFC 1006 responder).
    /// Without it: the matrix (the reference and every flaw, in process).
    #[arg(long, value_name = "IUT")]
    pub iut: Option<String>,
    /// The IUT's declaration (TOML): capabilities, expected divergences with reasons, and (over TCP) the
    /// [initiator] command that makes the IUT connect.
    #[arg(long, value_name = "FILE")]
    pub declare: Option<PathBuf>,
    /// With tcp://: run cases that need the IUT as initiator by launching this command per case (the tester
    /// listens). Placeholders {addr} {mail} {count} {size} {turn} {mode} {rtse}; e.g.
    /// '{rtse} serve --connect {addr} --mode {mode} --send {count} --size {size} --turn {turn}'.
    /// Overrides the declaration's [initiator] command.
    #[arg(long, value_name = "TEMPLATE")]
    pub initiator_cmd: Option<String>,
    /// RTSE mode of an in-process IUT (a declaration's mode wins).
    #[arg(long, value_enum, default_value_t = ModeOpt::Normal)]
    pub mode: ModeOpt,
    /// Report to write, `KIND=PATH` with KIND json, junit or html (PATH `-`: stdout); repeatable.
    #[arg(long, value_name = "KIND=PATH")]
    pub report: Vec<String>,
    /// Seed for every case (default: derived from each case id).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Colour the table.
    #[arg(long, value_enum, default_value_t = ColorOpt::Auto)]
    pub color: ColorOpt,
    /// List passing cases too.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// One line per case: id, importance, requirement.
    List {
        /// Only these (ids, prefixes or globs).
        #[arg(value_name = "CASE")]
        cases: Vec<String>,
    },
    /// A case in full: clause, requirement, needs, setup and the script (TOML).
    Show {
        /// The case id.
        id: String,
    },
}

/// Select cases by patterns (all when none).
#[must_use]
pub fn select(all: &[Case], patterns: &[String]) -> Vec<Case> {
    all.iter().filter(|c| patterns.is_empty() || patterns.iter().any(|p| case::matches(p, &c.id))).cloned().collect()
}

/// `rtse cases`.
pub fn cases(cmd: &CasesCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let all = match case::builtin() {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "rtse cases: {e}");
            return exit::USAGE;
        }
    };
    match cmd {
        CasesCommand::List { cases } => {
            let sel = select(&all, cases);
            if sel.is_empty() {
                let _ = writeln!(err, "rtse cases: no case selected");
                return exit::NO_CASES;
            }
            for c in &sel {
                let _ =
                    writeln!(out, "{:<58} {:<6} {}", c.id, format!("{:?}", c.importance).to_lowercase(), c.requirement);
            }
            let _ = writeln!(out, "{} cases", sel.len());
            exit::OK
        }
        CasesCommand::Show { id } => {
            let Some(c) = all.iter().find(|c| c.id == *id) else {
                let _ = writeln!(err, "rtse cases show: no case {id:?} (rtse cases list)");
                return exit::NO_CASES;
            };
            let text = toml::to_string_pretty(c).unwrap_or_default();
            let _ = writeln!(out, "# from cases/{}\n{text}", c.file);
            exit::OK
        }
    }
}

/// Parse an `--iut` value into an adapter and its default capabilities.
pub fn iut_of(spec: &str, mode: Mode) -> Result<(Box<dyn Iut>, Capabilities), String> {
    iut_with(spec, mode, None)
}

/// [`iut_of`], with the command that makes a TCP IUT connect (the IUT as
/// initiator: the tester listens).
pub fn iut_with(
    spec: &str,
    mode: Mode,
    launch: Option<super::tcp::InitiatorLaunch>,
) -> Result<(Box<dyn Iut>, Capabilities), String> {
    if spec == "reference" {
        return Ok((Box::new(InProcessIut::new(mode, None)), Capabilities::all(mode)));
    }
    if let Some(f) = spec.strip_prefix("flaw:") {
        let f: Flaw = f.parse().map_err(|e| format!("{e}"))?;
        return Ok((Box::new(InProcessIut::new(mode, Some(f))), Capabilities::all(mode)));
    }
    if let Some(addr) = spec.strip_prefix("tcp://") {
        let caps = Capabilities { initiator: launch.is_some(), ..Capabilities::all(mode) };
        let mut iut = super::tcp::TcpIut::new(addr)?;
        if let Some(l) = launch {
            super::tcp::split_command(&l.command).map_err(|e| format!("initiator command: {e}"))?;
            iut = iut.with_initiator(l);
        }
        return Ok((Box::new(iut), caps));
    }
    Err(format!("--iut {spec:?}: reference, flaw:NAME or tcp://HOST:PORT"))
}

/// Run `cases` against one IUT with progress on stderr (when a terminal).
pub fn run_iut(
    cases: &[Case],
    iut: &mut dyn Iut,
    caps: &Capabilities,
    seed: Option<u64>,
    decl: Option<&Declaration>,
    all: &[Case],
    err: &mut dyn Write,
) -> Report {
    let progress = std::io::stderr().is_terminal();
    let mut rows = Vec::with_capacity(cases.len());
    for (i, c) in cases.iter().enumerate() {
        if progress {
            let _ = write!(err, "\r\x1b[K[{}/{}] {} {}", i + 1, cases.len(), iut.name(), c.id);
            let _ = err.flush();
        }
        let r = run_case(c, iut, caps, seed);
        rows.push(row(r, decl));
    }
    if progress {
        let _ = write!(err, "\r\x1b[K");
    }
    let stale = decl.map(|d| d.stale(all).into_iter().map(|e| e.case.clone()).collect()).unwrap_or_default();
    let name = decl.and_then(|d| d.name.clone()).unwrap_or_else(|| iut.name());
    Report { iut: name, rows, stale }
}

fn row(r: CaseResult, decl: Option<&Declaration>) -> Row {
    let e = decl.and_then(|d| d.expected_for(&r.id));
    Row { grade: grade(&r, e), expected: e.map(|e| e.verdict), expected_reason: e.map(|e| e.reason.clone()), result: r }
}

fn write_reports(
    specs: &[(String, String)],
    report: &Report,
    cases: &[Case],
    extra: Option<serde_json::Value>,
    out: &mut dyn Write,
) -> Result<(), String> {
    for (kind, path) in specs {
        let text = match kind.as_str() {
            "json" => {
                let mut j = report.json();
                if let (Some(x), Some(o)) = (&extra, j.as_object_mut()) {
                    o.insert("matrix".into(), x.clone());
                }
                serde_json::to_string_pretty(&j).map_err(|e| e.to_string())? + "\n"
            }
            "junit" => report.junit()?,
            "html" => report.html(cases),
            _ => unreachable!("checked"),
        };
        if path == "-" {
            out.write_all(text.as_bytes()).map_err(|e| format!("stdout: {e}"))?;
        } else {
            std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    Ok(())
}

fn parse_reports(specs: &[String]) -> Result<Vec<(String, String)>, String> {
    specs
        .iter()
        .map(|s| {
            let (k, p) = s.split_once('=').ok_or_else(|| format!("--report {s:?}: KIND=PATH"))?;
            if !matches!(k, "json" | "junit" | "html") {
                return Err(format!("--report {s:?}: KIND is json, junit or html"));
            }
            if p.is_empty() {
                return Err(format!("--report {s:?}: empty PATH"));
            }
            Ok((k.to_owned(), p.to_owned()))
        })
        .collect()
}

/// `rtse run`.
pub fn run(a: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let all = match case::builtin() {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "rtse run: {e}");
            return exit::USAGE;
        }
    };
    let reports = match parse_reports(&a.report) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "rtse run: {e}");
            return exit::USAGE;
        }
    };
    let decl = match &a.declare {
        None => None,
        Some(p) => match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| Declaration::parse(&t)) {
            Ok(d) => Some(d),
            Err(e) => {
                let _ = writeln!(err, "rtse run: {}: {e}", p.display());
                return exit::USAGE;
            }
        },
    };
    let sel = select(&all, &a.cases);
    if sel.is_empty() {
        let _ = writeln!(err, "rtse run: no case selected (rtse cases list)");
        return exit::NO_CASES;
    }
    let color = match a.color {
        ColorOpt::Always => true,
        ColorOpt::Never => false,
        ColorOpt::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    // Reports on stdout replace the table there.
    let table_out = !reports.iter().any(|(_, p)| p == "-");
    let mut sink = std::io::sink();
    let tout: &mut dyn Write = if table_out { out } else { &mut sink };
    match &a.iut {
        Some(spec) => {
            let mut mode = a.mode.mode();
            let mut caps_decl = None;
            if let Some(d) = &decl {
                match d.capabilities() {
                    Ok(c) => {
                        mode = c.mode;
                        caps_decl = Some(c);
                    }
                    Err(e) => {
                        let _ = writeln!(err, "rtse run: declaration: {e}");
                        return exit::USAGE;
                    }
                }
            }
            let launch = a
                .initiator_cmd
                .clone()
                .map(|c| (c, "127.0.0.1:0".to_owned()))
                .or_else(|| decl.as_ref().and_then(|d| d.initiator.clone()).map(|i| (i.command, i.listen)))
                .map(|(command, listen)| super::tcp::InitiatorLaunch { command, listen, mode });
            let (mut iut, caps) = match iut_with(spec, mode, launch) {
                Ok(x) => x,
                Err(e) => {
                    let _ = writeln!(err, "rtse run: {e}");
                    return exit::USAGE;
                }
            };
            let caps = caps_decl.unwrap_or(caps);
            let report = run_iut(&sel, iut.as_mut(), &caps, a.seed, decl.as_ref(), &all, err);
            let _ = report.table(tout, color, a.verbose);
            if let Err(e) = write_reports(&reports, &report, &all, None, out) {
                let _ = writeln!(err, "rtse run: {e}");
                return exit::USAGE;
            }
            if report.ok() {
                exit::OK
            } else {
                exit::FAIL
            }
        }
        None => matrix(a, &sel, &all, &reports, color, table_out, out, err),
    }
}

/// The main job: the reference and every flaw, in process.
#[allow(clippy::too_many_arguments)]
fn matrix(
    a: &RunArgs,
    sel: &[Case],
    all: &[Case],
    reports: &[(String, String)],
    color: bool,
    table_out: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mode = a.mode.mode();
    let caps = Capabilities::all(mode);
    let reference = run_iut(sel, &mut InProcessIut::new(mode, None), &caps, a.seed, None, all, err);
    let mut ok = reference.ok();
    let mut lines = Vec::new();
    let mut json = Vec::new();
    for f in Flaw::ALL {
        let r = run_iut(sel, &mut InProcessIut::new(mode, Some(f)), &caps, a.seed, None, all, err);
        let caught: Vec<&str> =
            r.rows.iter().filter(|x| x.result.verdict == Verdict::Fail).map(|x| x.result.id.as_str()).collect();
        let bad: Vec<&str> = r
            .rows
            .iter()
            .filter(|x| matches!(x.result.verdict, Verdict::Error | Verdict::Inconclusive))
            .map(|x| x.result.id.as_str())
            .collect();
        json.push(serde_json::json!({ "flaw": f.name(), "caught_by": caught, "inconclusive_or_error": bad }));
        let status = if caught.is_empty() { "SURVIVES" } else { "caught" };
        // A flaw that fails no selected case is only a problem when the
        // whole suite runs.
        if caught.is_empty() && sel.len() == all.len() {
            ok = false;
        }
        let shown: Vec<&str> = caught.iter().take(4).copied().collect();
        let more = if caught.len() > 4 { format!(" (+{} more)", caught.len() - 4) } else { String::new() };
        let paint = |s: &str, c: &str| if color { format!("\x1b[{c}m{s}\x1b[0m") } else { s.to_owned() };
        lines.push(format!(
            "  {:<26} {} by {} case(s): {}{more}",
            f.name(),
            if caught.is_empty() { paint(status, "31") } else { paint(status, "32") },
            caught.len(),
            shown.join(", ")
        ));
    }
    let w: &mut dyn Write = if table_out { &mut *out } else { &mut std::io::sink() };
    let _ = reference.table(w, color, a.verbose);
    let _ = writeln!(w, "\nflaws (each must fail at least one case):");
    for l in &lines {
        let _ = writeln!(w, "{l}");
    }
    let caught = json.iter().filter(|j| j["caught_by"].as_array().is_some_and(|a| !a.is_empty())).count();
    let _ = writeln!(w, "mutation score: {caught}/{} flaws caught", Flaw::ALL.len());
    if let Err(e) = write_reports(reports, &reference, all, Some(serde_json::Value::Array(json)), out) {
        let _ = writeln!(err, "rtse run: {e}");
        return exit::USAGE;
    }
    if ok {
        exit::OK
    } else {
        exit::FAIL
    }
}

/// Grades of a report (for tests).
#[must_use]
pub fn grades(r: &Report) -> Vec<(String, Grade)> {
    r.rows.iter().map(|x| (x.result.id.clone(), x.grade)).collect()
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("end").required(true).args(["listen", "connect"])))]
pub struct ServeArgs {
    /// Listen on this address as association-responder (`127.0.0.1:0` picks a free port; the first line
    /// printed is `listening on ADDR`).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "connect")]
    pub listen: Option<String>,
    /// Connect to this address as association-initiator: open the association, send, ask for and give the
    /// Turn, and recover a lost association by reconnecting here with RTORQ recover.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Run this flaw instead of the reference MTA (`rtse sim` and docs/machine.md list them).
    #[arg(long, value_name = "NAME")]
    pub flaw: Option<String>,
    /// RTSE mode: the initiator opens in it; the responder follows the peer's CN.
    #[arg(long, value_enum, default_value_t = ModeOpt::Normal)]
    pub mode: ModeOpt,
    /// MTA name: calling/responding reference prefix and local part of its MTS identifiers
    /// (`/C=GB/A= /P=ACME/;NAME-000001`). Default: IUT listening, INIT connecting.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Messages to send (each with a distinct MTS identifier). Listening, they go to the associations the
    /// peer opens; mail not confirmed on an association that ends unrecovered goes to the next one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub send: u32,
    /// Content octets per message.
    #[arg(long, value_name = "OCTETS", default_value_t = 100)]
    pub size: u32,
    /// Submit the --send messages one every DURATION (500ms, 2s, 1m) instead of all at start.
    #[arg(long, value_name = "DURATION", value_parser = super::peer::parse_duration)]
    pub send_every: Option<std::time::Duration>,
    /// Exit (0) once N distinct messages were received and every --send message was confirmed; connecting,
    /// it first closes the association (RT-CLOSE, asking for the Turn with priority 0 if needed).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit when nothing arrived for DURATION: 0 if --count was reached or not given, 1 otherwise.
    #[arg(long, value_name = "DURATION", value_parser = super::peer::parse_duration)]
    pub exit_after_idle: Option<std::time::Duration>,
    /// Connecting: who gets the Turn when it opens the association (CN Token Setting 00 or 15).
    #[arg(long, value_enum, default_value_t = TurnOpt::Initiator)]
    pub turn: TurnOpt,
    /// Listening: concurrent connections beyond which new ones are closed at once.
    #[arg(long, default_value_t = 256)]
    pub max_conns: usize,
    /// Listening: seconds without input after which a connection is closed.
    #[arg(long, default_value_t = 60)]
    pub idle: u64,
}

pub const SERVE_HELP: &str = "Run the reference MTA (or a flaw) over real RFC 1006 TCP, as responder \
(--listen) or initiator (--connect), so that the suite, other tools and other MTAs can talk to it.\n\n\
Its MTA job: it accepts (or opens) the association, sends its queued messages when it holds the Turn, asks \
for the Turn (RT-TURN-PLEASE) when it has mail and gives it (RT-TURN-GIVE) when asked and idle or after a \
burst of 8, and keeps a lost association for recovery: the initiator reconnects to the same address with \
RTORQ recover (every 200 ms, 3 attempts), the responder waits 20 s for it. Connecting, it reopens an \
association that could not be recovered (after 1 s).\n\n\
Output (stdout): `listening on ADDR` first when listening; then one line per message: `sent MTS-ID` for \
each positive RT-TRANSFER confirmation of its own messages, `received MTS-ID` for each RT-TRANSFER \
indication (a duplicate delivery prints twice), so a test counts exactly-once delivery.\n\n\
As an IUT for `rtse run`, a tester's CN can also ask for mail: a calling SS-user reference \
`TESTER;mail=100,8000/0001` makes it send two messages of 100 and 8000 octets (docs/conformance.md).\n\n\
Exit codes: 0 --count reached (or, without --count, stopped by --exit-after-idle); 1 --exit-after-idle \
passed before --count was reached; 2 usage or I/O error.\n\n\
Examples:\n  rtse serve --listen 127.0.0.1:10200\n  \
rtse serve --listen 127.0.0.1:10200 --send 20 --count 20\n  \
rtse serve --connect 127.0.0.1:10200 --send 20 --count 20 --exit-after-idle 10s\n  \
rtse serve --connect mta.example:102 --mode x410 --send 5 --send-every 2s --count 0";

/// `rtse serve`.
pub fn serve(a: &ServeArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let flaw = match a.flaw.as_deref().map(str::parse::<Flaw>).transpose() {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "rtse serve: {e}");
            return exit::USAGE;
        }
    };
    let default_name = if a.connect.is_some() { "INIT" } else { "IUT" };
    let name = a.name.clone().unwrap_or_else(|| default_name.to_owned());
    if name.is_empty() || name.len() > 24 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        let _ = writeln!(err, "rtse serve: --name {name:?}: 1 to 24 letters, digits or '-'");
        return exit::USAGE;
    }
    let traffic = super::peer::Traffic::new(&name, a.send, a.size, a.send_every, a.count);
    if let Some(addr) = &a.connect {
        let cfg = super::peer::ConnectConfig {
            addr: addr.clone(),
            mode: a.mode.mode(),
            flaw,
            name,
            idle_exit: a.exit_after_idle,
            reopen: std::time::Duration::from_secs(1),
            responder_turn: a.turn == TurnOpt::Responder,
        };
        return match super::peer::run_connect(&cfg, traffic, out) {
            Ok(super::peer::ConnectEnd::Done | super::peer::ConnectEnd::Idle { reached: true }) => exit::OK,
            Ok(super::peer::ConnectEnd::Idle { reached: false }) => {
                let _ = writeln!(err, "rtse serve: idle for {:?} before --count was reached", a.exit_after_idle);
                exit::FAIL
            }
            Err(e) => {
                let _ = writeln!(err, "rtse serve: {e}");
                exit::USAGE
            }
        };
    }
    let own = a.send > 0 || a.count.is_some() || a.name.is_some();
    let cfg = super::tcp::ServeConfig {
        max_conns: a.max_conns.max(1),
        idle: std::time::Duration::from_secs(a.idle.max(1)),
        traffic: own.then(|| std::sync::Arc::new(std::sync::Mutex::new(traffic))),
        idle_exit: a.exit_after_idle,
        ..super::tcp::ServeConfig::new(a.mode.mode(), flaw)
    };
    let listen = a.listen.as_deref().unwrap_or("127.0.0.1:0");
    match super::tcp::run_serve(listen, cfg, out) {
        Ok(true) => exit::OK,
        Ok(false) => {
            let _ = writeln!(err, "rtse serve: idle for {:?} before --count was reached", a.exit_after_idle);
            exit::FAIL
        }
        Err(e) => {
            let _ = writeln!(err, "rtse serve: {e}");
            exit::USAGE
        }
    }
}

/// `rtse bench suite`: cases per second in process and over loopback TCP
/// against the same server `rtse serve` runs (in a thread of this process).
pub fn bench(out: &mut dyn Write) -> Result<(), String> {
    let all = case::builtin().map_err(|e| e.to_string())?;
    let caps = Capabilities::all(Mode::Normal);
    let mut best = f64::MAX;
    let mut verdicts = Vec::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let rs: Vec<CaseResult> =
            all.iter().map(|c| run_case(c, &mut InProcessIut::new(Mode::Normal, None), &caps, None)).collect();
        best = best.min(t.elapsed().as_secs_f64());
        verdicts = rs.into_iter().map(|r| r.verdict).collect();
    }
    let pass = verdicts.iter().filter(|v| **v == Verdict::Pass).count();
    writeln!(
        out,
        "in-process: {} cases ({pass} pass) in {:.3} s = {:.0} cases/s (best of 3; target: whole suite < 1 s)",
        all.len(),
        best,
        all.len() as f64 / best
    )
    .map_err(|e| e.to_string())?;
    let t = std::time::Instant::now();
    let m = super::matrix(&all, Mode::Normal);
    writeln!(
        out,
        "matrix (reference + {} flaws): {} case runs in {:.3} s",
        m.flaws.len(),
        all.len() * (1 + m.flaws.len()),
        t.elapsed().as_secs_f64()
    )
    .map_err(|e| e.to_string())?;
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let cfg = super::tcp::ServeConfig::new(Mode::Normal, None);
    std::thread::spawn(move || super::tcp::serve(l, cfg, || false));
    let tcp_caps = Capabilities { initiator: false, ..caps };
    let mut iut = super::tcp::TcpIut::new(&addr.to_string())?;
    let t = std::time::Instant::now();
    let rs: Vec<CaseResult> = all.iter().map(|c| run_case(c, &mut iut, &tcp_caps, None)).collect();
    let secs = t.elapsed().as_secs_f64();
    let ran = rs.iter().filter(|r| r.verdict != Verdict::Skipped).count();
    let pass = rs.iter().filter(|r| r.verdict == Verdict::Pass).count();
    writeln!(
        out,
        "loopback TCP: {ran} cases run ({pass} pass, {} skipped) in {secs:.2} s = {:.1} cases/s (target: < 30 s)",
        rs.len() - ran,
        ran as f64 / secs
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
