//! Real sockets: [`TcpIut`] (the tester connects to an RFC 1006
//! responder, with real drops: FIN by close, RST by SO_LINGER 0) and
//! [`serve`] (`rtse serve`: the reference MTA, or a flaw, as an RFC 1006
//! server on std TCP, one thread per connection).
//!
//! `rtse serve` keeps an association whose transport was lost for
//! recovery: a new connection whose CN quotes it (RTORQ `recover`, read
//! with the codec) is handed to the same MTA, which replays the
//! connection's octets (its CC, already sent by the fresh MTA that
//! answered the CR, is not sent twice).

use super::iut::{DropHow, Iut, IutError, IutEvent, MtaHost};
use super::peer::Traffic;
use crate::flaw::Flaw;
use crate::machine::{Action, Output, Tick, TimerId, TransportEvent};
use crate::tracker::{CloseHow, ConnRef, TurnEvent};
use rtse_codec::presentation::Mode;
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An RFC 1006 implementation at `host:port`: the tester connects to it
/// (the IUT as responder) and, with [`TcpIut::with_initiator`], the tester
/// listens and launches a command per case that makes the IUT connect (the
/// IUT as initiator, as Autobahn's fuzzingclient mode does).
#[derive(Debug)]
pub struct TcpIut {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    start: Instant,
    buf: Vec<u8>,
    initiator: Option<InitiatorLaunch>,
    /// Per initiator case: the tester's listener, the launched command, a
    /// connection the IUT made that the tester has not accepted yet.
    listener: Option<TcpListener>,
    child: Option<std::process::Child>,
    pending: Option<TcpStream>,
    /// Connections the tester abandoned (`stall`): neither read nor
    /// written until the case ends.
    stalled: Vec<TcpStream>,
}

/// How the tester makes an IUT connect: a command template run per
/// initiator case, and the address the tester listens on.
#[derive(Debug, Clone)]
pub struct InitiatorLaunch {
    /// Split like a shell would (quotes, no expansion); placeholders
    /// `{addr}` (where the tester listens), `{mail}` (the case's message
    /// sizes, comma-separated), `{count}` (how many), `{size}` (the first
    /// size, 100 if none), `{turn}` (`initiator` or `responder`: who gets
    /// the Turn when the IUT opens), `{mode}` (`normal` or `x410`),
    /// `{rtse}` (this executable).
    pub command: String,
    /// Listen address (`127.0.0.1:0`: a fresh port per case).
    pub listen: String,
    pub mode: Mode,
}

/// Split a command line: whitespace separates words, single and double
/// quotes group, backslash escapes the next character (outside single quotes).
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                cur.push(chars.next().ok_or("a trailing backslash")?);
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("an unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("an empty command".into());
    }
    Ok(words)
}

impl InitiatorLaunch {
    /// The argv for one case.
    pub fn argv(&self, addr: &SocketAddr, mail: &[u32], responder_turn: bool) -> Result<Vec<String>, String> {
        let words = split_command(&self.command).map_err(|e| format!("initiator command: {e}"))?;
        let rtse = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "rtse".into());
        let subst = |w: &str| {
            w.replace("{addr}", &addr.to_string())
                .replace("{mail}", &mail.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
                .replace("{count}", &mail.len().to_string())
                .replace("{size}", &mail.first().copied().unwrap_or(100).to_string())
                .replace("{turn}", if responder_turn { "responder" } else { "initiator" })
                .replace("{mode}", if self.mode == Mode::X410 { "x410" } else { "normal" })
                .replace("{rtse}", &rtse)
        };
        Ok(words.iter().map(|w| subst(w)).collect())
    }
}

impl TcpIut {
    /// Resolve `host:port`.
    pub fn new(addr: &str) -> Result<Self, String> {
        let addr = addr
            .to_socket_addrs()
            .map_err(|e| format!("{addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr}: no address"))?;
        Ok(TcpIut {
            addr,
            stream: None,
            start: Instant::now(),
            buf: vec![0; 64 * 1024],
            initiator: None,
            listener: None,
            child: None,
            pending: None,
            stalled: Vec::new(),
        })
    }

    /// Also drive the IUT as initiator, launching `launch` per case.
    #[must_use]
    pub fn with_initiator(mut self, launch: InitiatorLaunch) -> Self {
        self.initiator = Some(launch);
        self
    }

    fn stop_child(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Only the process this adapter started, by its handle.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A connection the IUT made, if one is waiting.
    fn poll_accept(&mut self) -> Result<bool, IutError> {
        if self.pending.is_some() {
            return Ok(false);
        }
        let Some(l) = self.listener.as_ref() else { return Ok(false) };
        match l.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_nodelay(true);
                self.pending = Some(s);
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(IutError(format!("accept: {e}"))),
        }
    }
}

impl Iut for TcpIut {
    fn name(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn start(&mut self, initiator: Option<(&[u32], bool)>, _seed: u64) -> Result<(), IutError> {
        self.stream = None;
        self.pending = None;
        self.listener = None;
        self.stalled.clear();
        self.stop_child();
        self.start = Instant::now();
        let Some((mail, responder_turn)) = initiator else { return Ok(()) };
        let Some(launch) = self.initiator.as_ref() else {
            return Err(IutError("no initiator command declared: the IUT cannot be made to connect".into()));
        };
        let l = TcpListener::bind(&launch.listen).map_err(|e| IutError(format!("listen {}: {e}", launch.listen)))?;
        l.set_nonblocking(true).map_err(|e| IutError(e.to_string()))?;
        let addr = l.local_addr().map_err(|e| IutError(e.to_string()))?;
        let argv = launch.argv(&addr, mail, responder_turn).map_err(IutError)?;
        let child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| IutError(format!("initiator command {:?}: {e}", argv[0])))?;
        self.child = Some(child);
        self.listener = Some(l);
        Ok(())
    }

    fn connect(&mut self) -> Result<(), IutError> {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(3))
            .map_err(|e| IutError(format!("connect {}: {e}", self.addr)))?;
        let _ = s.set_nodelay(true);
        self.stream = Some(s);
        Ok(())
    }

    fn accept(&mut self) -> Result<(), IutError> {
        let s = self.pending.take().ok_or_else(|| IutError("accept: the IUT is not connecting".into()))?;
        self.stream = Some(s);
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), IutError> {
        if let Some(s) = self.stream.as_mut() {
            // A write after the IUT closed fails; the close is read next.
            let _ = s.set_nonblocking(false);
            let _ = s.write_all(bytes);
        }
        Ok(())
    }

    fn next(&mut self, within: Duration) -> Result<Option<IutEvent>, IutError> {
        if self.listener.is_some() {
            // Listening too: poll the listener between short reads.
            let until = Instant::now() + within;
            loop {
                if self.poll_accept()? {
                    return Ok(Some(IutEvent::Connect));
                }
                let left = until.saturating_duration_since(Instant::now());
                let slice = left.min(Duration::from_millis(5));
                if self.stream.is_none() {
                    std::thread::sleep(slice);
                } else if let Some(e) = self.read_event(slice)? {
                    return Ok(Some(e));
                }
                if Instant::now() >= until {
                    return Ok(None);
                }
            }
        }
        if self.stream.is_none() {
            std::thread::sleep(within.min(Duration::from_secs(5)));
            return Ok(None);
        }
        self.read_event(within)
    }

    fn drop_transport(&mut self, how: DropHow) -> Result<(), IutError> {
        self.drop_now(how);
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn finish(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.pending = None;
        self.listener = None;
        self.stalled.clear();
        self.stop_child();
    }

    fn nonce(&self) -> u64 {
        // Unique per case and run: the server outlives both.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (t.as_nanos() as u64) ^ self.start.elapsed().as_nanos() as u64 | 1
    }
}

impl TcpIut {
    /// One read on the current stream within `within`.
    fn read_event(&mut self, within: Duration) -> Result<Option<IutEvent>, IutError> {
        let Some(s) = self.stream.as_mut() else { return Ok(None) };
        if within.is_zero() {
            s.set_nonblocking(true).map_err(|e| IutError(e.to_string()))?;
        } else {
            s.set_nonblocking(false).map_err(|e| IutError(e.to_string()))?;
            s.set_read_timeout(Some(within)).map_err(|e| IutError(e.to_string()))?;
        }
        let r = s.read(&mut self.buf);
        match r {
            Ok(0) => {
                self.stream = None;
                Ok(Some(IutEvent::Closed(CloseHow::Fin)))
            }
            Ok(n) => Ok(Some(IutEvent::Bytes(self.buf[..n].to_vec()))),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                self.stream = None;
                Ok(Some(IutEvent::Closed(CloseHow::Rst)))
            }
            Err(e) => Err(IutError(format!("read: {e}"))),
        }
    }

    fn drop_now(&mut self, how: DropHow) {
        match how {
            DropHow::HalfClose => {
                // FIN out; the stream stays current: the IUT's reaction is read.
                if let Some(s) = self.stream.as_ref() {
                    let _ = s.shutdown(Shutdown::Write);
                }
                return;
            }
            DropHow::Stall => {
                if let Some(s) = self.stream.take() {
                    self.stalled.push(s);
                }
                return;
            }
            DropHow::Fin | DropHow::Rst => {}
        }
        if let Some(s) = self.stream.take() {
            if how == DropHow::Rst {
                // SO_LINGER 0: close sends RST (std has no API for it).
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            } else {
                // FIN, then read (and discard) until the peer closes, so
                // that unread octets do not turn the close into a RST
                // (which would also discard an AB just sent).
                let _ = s.shutdown(Shutdown::Write);
                let until = Instant::now() + Duration::from_millis(300);
                let mut sink = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
                let _ = s.set_nonblocking(false);
                let mut s = s;
                while Instant::now() < until {
                    match s.read(&mut sink) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

/// `rtse serve` settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub mode: Mode,
    pub flaw: Option<Flaw>,
    /// Concurrent connections beyond which new ones are closed at once.
    pub max_conns: usize,
    /// A connection idle this long is closed.
    pub idle: Duration,
    /// Messages of its own to send and the record of deliveries
    /// (`--send`, `--count`); `None`: only the upper tester's mail.
    pub traffic: Option<Arc<Mutex<Traffic>>>,
    /// Exit when nothing arrived on any connection for this long.
    pub idle_exit: Option<Duration>,
}

impl ServeConfig {
    /// The reference MTA (or `flaw`) in `mode`, defaults otherwise.
    #[must_use]
    pub fn new(mode: Mode, flaw: Option<Flaw>) -> Self {
        ServeConfig { mode, flaw, max_conns: 256, idle: Duration::from_secs(60), traffic: None, idle_exit: None }
    }
}

/// An MTA whose association was lost, waiting to be recovered.
struct Waiting {
    host: MtaHost,
    timers: [Option<Tick>; 2],
}

struct Shared {
    cfg: ServeConfig,
    epoch: Instant,
    waiting: Mutex<HashMap<ConnRef, Waiting>>,
    /// Connection identifiers of associations on a live connection: a
    /// recovery quoting one waits for that connection's end to be seen
    /// (the tester may reconnect before the server reads its FIN/RST).
    live_keys: Mutex<std::collections::HashSet<ConnRef>>,
    live: AtomicUsize,
    /// Live connections a recovery quotes: their threads give up their
    /// MTA (a stalled peer never closes; the recovery replaces it).
    takeover: Mutex<std::collections::HashSet<ConnRef>>,
    /// Last octets read on any connection.
    last_input: Mutex<Instant>,
}

impl Shared {
    fn now(&self) -> Tick {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// Accept connections on `listener` forever (or until `stop` says so),
/// one thread each.
pub fn serve(listener: TcpListener, cfg: ServeConfig, stop: impl Fn() -> bool) -> std::io::Result<()> {
    serve_until(listener, cfg, stop).map(|_| ())
}

/// [`serve`], also ending (with `true`) once `cfg.traffic` is done and no
/// connection is live, or (with whether `--count` was reached) when
/// nothing arrived for `cfg.idle_exit`.
pub fn serve_until(listener: TcpListener, cfg: ServeConfig, stop: impl Fn() -> bool) -> std::io::Result<bool> {
    let polls = cfg.idle_exit.is_some() || cfg.traffic.as_ref().is_some_and(|t| lock(t).has_count());
    let shared = Arc::new(Shared {
        cfg,
        epoch: Instant::now(),
        waiting: Mutex::new(HashMap::new()),
        live_keys: Mutex::new(std::collections::HashSet::new()),
        live: AtomicUsize::new(0),
        takeover: Mutex::new(std::collections::HashSet::new()),
        last_input: Mutex::new(Instant::now()),
    });
    // With an end condition, accept without blocking and check it between.
    listener.set_nonblocking(polls)?;
    loop {
        if stop() {
            return Ok(false);
        }
        let conn = listener.accept();
        if polls {
            let idle = shared.live.load(Ordering::Relaxed) == 0;
            let tr = shared.cfg.traffic.as_ref().map(|t| {
                let t = lock(t);
                (t.done(), t.has_count())
            });
            if idle && tr.is_some_and(|(done, _)| done) {
                return Ok(true);
            }
            if let Some(d) = shared.cfg.idle_exit {
                if lock(&shared.last_input).elapsed() >= d {
                    return Ok(tr.is_none_or(|(done, has)| done || !has));
                }
            }
        }
        let stream = match conn {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => continue,
        };
        let _ = stream.set_nonblocking(false);
        *lock(&shared.last_input) = Instant::now();
        if shared.live.load(Ordering::Relaxed) >= shared.cfg.max_conns {
            drop(stream);
            continue;
        }
        shared.live.fetch_add(1, Ordering::Relaxed);
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = connection(&sh, stream);
            sh.live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Carry out a host's actions on the socket; false once it disconnected.
fn act(
    out: &mut Output,
    stream: &mut TcpStream,
    timers: &mut [Option<Tick>; 2],
    skip_first_transmit: &mut bool,
    lost: &mut Vec<()>,
    host_closed: &mut bool,
    traffic: Option<&Mutex<Traffic>>,
) -> bool {
    let mut up = true;
    for a in &out.actions {
        match a {
            Action::Transmit(t) => {
                if std::mem::take(skip_first_transmit) {
                    continue;
                }
                if up && stream.write_all(out.bytes(t)).is_err() {
                    up = false;
                }
            }
            Action::Disconnect => {
                let _ = stream.shutdown(Shutdown::Both);
                up = false;
                *host_closed = true;
            }
            // A responder has nowhere to connect to (flaw responder-recovers).
            Action::Connect => lost.push(()),
            Action::SetTimer(id, at) => timers[*id as usize] = Some(*at),
            Action::CancelTimer(id) => timers[*id as usize] = None,
            Action::Indication(i) => {
                if let Some(t) = traffic {
                    lock(t).indication(i);
                }
            }
        }
    }
    out.clear();
    up
}

fn connection(sh: &Shared, mut stream: TcpStream) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let tr = sh.cfg.traffic.as_deref();
    let mut cfg = MtaHost::config("IUT", sh.cfg.mode, sh.cfg.flaw, false);
    if let Some(t) = tr {
        cfg.machine.name = Arc::from(lock(t).name());
        // Messages are handed over in batches: no fresh association per
        // 50 queued (crate::mta's backlog behaviour is for the simulator).
        cfg.backlog_threshold = usize::MAX;
    }
    let mut host = MtaHost::new(cfg);
    let mut timers: [Option<Tick>; 2] = [None; 2];
    let mut out = Output::new();
    let mut skip = false;
    let mut failed_connects = Vec::new();
    // The MTA closed the connection (else the peer did, or a write failed).
    let mut host_closed = false;
    // The MTA was told the connection is gone.
    let mut lost_fed = false;
    host.transport(sh.now(), TransportEvent::Incoming, &mut out);
    let mut up = act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
    // Until the CN: its octets (for a replay into a recovered MTA).
    let mut dec = Some(AssociationDecoder::new());
    let mut seen: Vec<u8> = Vec::new();
    let mut this_conn: Option<ConnRef> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_input = Instant::now();
    while up {
        if this_conn.as_ref().is_some_and(|k| lock(&sh.takeover).remove(k)) {
            // A recovery quoting this connection arrived on another: the
            // transport is lost (as the machine does for an incoming
            // connection that replaces the current one).
            lost_fed = true;
            host.transport(sh.now(), TransportEvent::Lost, &mut out);
            act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
            let _ = stream.shutdown(Shutdown::Both);
            break;
        }
        let now = sh.now();
        let next_timer = timers.iter().flatten().min().copied();
        let wait = next_timer.map_or(Duration::from_millis(200), |t| Duration::from_nanos(t.saturating_sub(now)));
        stream.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), Duration::from_millis(50))))?;
        match stream.read(&mut buf) {
            Ok(0) => {
                lost_fed = true;
                host.transport(sh.now(), TransportEvent::Lost, &mut out);
                act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
                up = false;
            }
            Ok(n) => {
                last_input = Instant::now();
                *lock(&sh.last_input) = last_input;
                let chunk = &buf[..n];
                let mut swap = None;
                if let Some(d) = dec.as_mut() {
                    seen.extend_from_slice(chunk);
                    let mut cn = None;
                    d.push(Sender::Initiator, chunk, |r| {
                        if let Ok(st) = r.result {
                            crate::observe::events(&st, |e| {
                                if let TurnEvent::Connect(c) = e {
                                    cn = Some(c);
                                }
                            });
                        }
                    });
                    if let Some(c) = cn {
                        dec = None;
                        this_conn = c.conn_ref.clone();
                        if let Some(k) = &this_conn {
                            lock(&sh.live_keys).insert(k.clone());
                        }
                        if let Some(lost) = c.recover {
                            // The lost connection may still look alive here
                            // (its FIN not read yet, or a stalled peer): its
                            // thread hands its MTA over.
                            if lock(&sh.live_keys).contains(&lost) {
                                lock(&sh.takeover).insert(lost.clone());
                            }
                            // Give the lost connection's thread up to 2 s to see its end.
                            let until = Instant::now() + Duration::from_secs(2);
                            while lock(&sh.live_keys).contains(&lost) && Instant::now() < until {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            swap = lock(&sh.waiting).remove(&lost);
                        }
                        if swap.is_none() && seen.len() > 64 * 1024 {
                            seen.clear();
                        }
                    } else if seen.len() > 64 * 1024 {
                        // No CN in 64 KiB: not worth replaying.
                        dec = None;
                        seen.clear();
                    }
                }
                if let Some(w) = swap {
                    // The recovered MTA takes over: replay this connection.
                    host = w.host;
                    timers = w.timers;
                    out.clear();
                    host.transport(sh.now(), TransportEvent::Incoming, &mut out);
                    host.received(sh.now(), &std::mem::take(&mut seen), &mut out);
                    skip = true; // its CC: the fresh MTA sent one already
                } else {
                    host.received(sh.now(), chunk, &mut out);
                }
                up = act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => {
                lost_fed = true;
                host.transport(sh.now(), TransportEvent::Lost, &mut out);
                act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
                up = false;
            }
        }
        if !failed_connects.is_empty() {
            failed_connects.clear();
            host.transport(sh.now(), TransportEvent::Lost, &mut out);
            up &= act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
        }
        if let Some(t) = tr {
            // Its own mail goes to an established association.
            if up && host.mta.machine().phase() == crate::machine::Phase::Open {
                let msgs = {
                    let mut t = lock(t);
                    t.tick(Instant::now());
                    t.take()
                };
                for m in msgs {
                    host.mta.handle(sh.now(), crate::mta::MtaInput::Submit(m), &mut out);
                }
                up &= act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
            }
        }
        let now = sh.now();
        for t in TimerId::ALL {
            if timers[t as usize].is_some_and(|at| at <= now) {
                timers[t as usize] = None;
                host.timer(now, t, &mut out);
                up &= act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
            }
        }
        if last_input.elapsed() > sh.cfg.idle {
            lost_fed = true;
            host.transport(sh.now(), TransportEvent::Lost, &mut out);
            act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
            let _ = stream.shutdown(Shutdown::Both);
            up = false;
        }
    }
    if !host_closed && !lost_fed {
        // A write failed (the peer reset or closed): the transport is lost.
        host.transport(sh.now(), TransportEvent::Lost, &mut out);
        act(&mut out, &mut stream, &mut timers, &mut skip, &mut failed_connects, &mut host_closed, tr);
    }
    // Waiting for a recovery: keep the MTA, keyed by this connection's
    // identifier (what the recovery CN quotes).
    let mut keep = None;
    if let (Some(at), Some(key)) = (timers[TimerId::RecoveryWait as usize], this_conn.clone()) {
        let now = sh.now();
        let mut w = lock(&sh.waiting);
        let expired: Vec<ConnRef> = w
            .iter()
            .filter(|(_, v)| v.timers[TimerId::RecoveryWait as usize].is_none_or(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let (Some(v), Some(t)) = (w.remove(&k), tr) {
                lock(t).give_back(v.host.mta.queue());
            }
        }
        if w.len() < 4096 && at > now {
            w.insert(key, Waiting { host, timers });
        } else {
            keep = Some(host);
        }
    } else {
        keep = Some(host);
    }
    // Not kept for a recovery: its unconfirmed mail goes to the next association.
    if let (Some(h), Some(t)) = (keep, tr) {
        lock(t).give_back(h.mta.queue());
    }
    if let Some(k) = this_conn {
        lock(&sh.live_keys).remove(&k);
        lock(&sh.takeover).remove(&k);
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bind and serve; prints `listening on ADDR` first (port 0: the chosen
/// one). Returns when an end condition of `cfg` holds ([`serve_until`]).
pub fn run_serve(listen: &str, cfg: ServeConfig, out: &mut dyn Write) -> Result<bool, String> {
    let l = TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    writeln!(out, "listening on {addr}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    // The caller owns stdout: connection threads send their `sent` /
    // `received` lines here, and this thread writes them.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(t) = &cfg.traffic {
        let mut t = lock(t);
        let taken = std::mem::replace(&mut *t, Traffic::new("", 0, 0, None, None));
        *t = taken.with_sink(tx);
    }
    let h = std::thread::spawn(move || serve_until(l, cfg, || false));
    while !h.is_finished() {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(20)) {
            let _ = writeln!(out, "{line}");
        }
        super::peer::drain_lines(&rx, out);
    }
    super::peer::drain_lines(&rx, out);
    h.join().map_err(|_| "the server thread panicked".to_owned())?.map_err(|e| e.to_string())
}
