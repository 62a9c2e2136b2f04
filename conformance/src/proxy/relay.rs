//! The I/O shell of `rtse proxy`: std threads and blocking sockets. One
//! acceptor thread; per connection two pump threads (one per direction).
//!
//! A pump reads what its MTA sent, cuts it into TPKTs (with the codec),
//! and, when a fault plan is set, decodes each TPKT with the connection's
//! [`AssociationDecoder`] (shared by the two pumps under a lock: the
//! presentation contexts of the CN/AC serve both directions) and asks the
//! [`FaultPlan`] what to do. Before it writes anything to the other MTA it
//! posts a [`Msg`] to the observer: a reply can only come after the write,
//! so the observer sees every connection's octets in causal order.
//!
//! Without a plan nothing is decoded here: octets are forwarded as read.
//! Octets that do not frame as TPKTs are forwarded as read too (no fault
//! applies to them); the observer reports them malformed. Nothing is sent
//! that was not received, except the faults: a forged session AB, or the
//! half TPKT of a `mid-tpkt` cut.
//!
//! Memory per connection: two read buffers of one maximal TPKT, the
//! decoder's bounded state ([`rtse_codec::limits`]), two small thread
//! stacks. A slow reader blocks its pump's writes, hence its reads: TCP
//! flow control reaches the sender; nothing queues in the proxy.

use super::fault::{DropKind, Effect, FaultPlan};
use super::splice::Pipes;
use crate::tracker::Side;
use rtse_codec::capture::Timestamp;
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Read buffer (and pipe size in splice mode): room for a maximal TPKT
/// (65 535 octets) left over and a large read after it.
const BUF: usize = 1 << 18;
/// Reads of at most this many octets reach the observer as a copy of
/// their own (they must not pin a whole buffer); larger ones share the
/// pump's buffer.
const SMALL: usize = 16 << 10;
/// Read buffers kept for reuse, process-wide, once nobody holds them: a
/// new one costs zeroing and page faults, and a pump needs one whenever
/// the observer still holds its last read. At most 8 MiB.
const POOL: usize = 32;

static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A pump's read buffer; back to the pool when its last holder (the pump
/// or the observer) drops it.
struct Buf(Vec<u8>);

impl Drop for Buf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.len() == BUF {
            let mut free = lock(&FREE);
            if free.len() < POOL {
                free.push(v);
            }
        }
    }
}

fn new_buf() -> Arc<Buf> {
    let reused = lock(&FREE).pop();
    Arc::new(Buf(reused.unwrap_or_else(|| vec![0u8; BUF])))
}
/// With `--relay auto`, a read this large (bulk data) switches the pump to
/// splice.
const BULK: usize = 64 << 10;
/// Pump thread stack.
const STACK: usize = 256 << 10;

/// A fault applied to relayed octets, as the observer logs it.
#[derive(Debug, Clone)]
pub struct FaultNote {
    pub effect: Effect,
    /// The rule (or `random(...)`).
    pub why: String,
    /// Turn-relevant PDUs of the TPKT it hit.
    pub pdus: Vec<&'static str>,
}

/// What the pumps tell the observer.
#[derive(Debug)]
pub enum Msg {
    /// A connection was accepted and its upstream connection made.
    Open { conn: u64, client: SocketAddr, listen: SocketAddr, local: SocketAddr, upstream: SocketAddr, time: Timestamp },
    /// A connection was accepted but the upstream MTA could not be reached.
    ConnectFailed { conn: u64, client: SocketAddr, error: String },
    /// `received` came from `from`'s MTA; its first `forwarded` octets were
    /// written to the other MTA (all of them unless a fault says otherwise).
    Data { conn: u64, from: Sender, received: Chunk, forwarded: usize, time: Timestamp, fault: Option<FaultNote> },
    /// The proxy sent `bytes` (a forged session AB) to both MTAs.
    Forged { conn: u64, bytes: Vec<u8>, time: Timestamp },
    /// `from`'s MTA half-closed (FIN); the proxy passed the FIN on.
    Fin { conn: u64, from: Sender, time: Timestamp },
    /// The connection is over (both FINs, a reset, a fault, idle).
    Close { conn: u64, rst: bool, time: Timestamp, reason: String },
    /// The octets of `from` stopped framing as TPKTs at stream offset `at`.
    Unframed { conn: u64, from: Sender, at: u64, error: String },
}

/// Received octets as the observer gets them: a range of a pump's read
/// buffer, shared rather than copied. The pump reuses the buffer once the
/// observer has dropped every chunk of it.
#[derive(Clone)]
pub struct Chunk {
    buf: Arc<Buf>,
    start: usize,
    end: usize,
}

impl From<Vec<u8>> for Chunk {
    fn from(v: Vec<u8>) -> Self {
        let end = v.len();
        Chunk { buf: Arc::new(Buf(v)), start: 0, end }
    }
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf.0[self.start..self.end]
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} octets)", self.end - self.start)
    }
}

/// How the pumps move octets from one socket to the other. The octets,
/// the observer's input and every fault are the same in each mode.
///
/// `Copy` is the default: over loopback, splice(2) saves one of the pump's
/// two copies but costs two more system calls and pipe bookkeeping per
/// read, and `rtse bench proxy` measured no consistent difference in the
/// pumps' CPU per GB (within ±7% either way over five runs; docs/proxy.md,
/// Performance), so the portable path with no extra descriptors wins.
/// With a real NIC the balance may differ: the bench prints both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RelayMode {
    /// read(2) and write(2) through the pump's buffer: portable.
    #[default]
    Copy,
    /// Copy until a connection carries bulk data, then splice (Linux).
    Auto,
    /// splice(2) from the first octet (Linux; else as `copy`).
    Splice,
}

pub fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp::new(d.as_secs(), d.subsec_nanos())
}

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub upstream: SocketAddr,
    /// A connection with no octet either way for this long is closed.
    pub idle: Duration,
    /// Connections beyond which new ones are refused (closed at once).
    pub max_conns: usize,
    pub connect_timeout: Duration,
    pub mode: RelayMode,
}

/// State shared by the acceptor, the pumps and the observer.
pub struct Shared {
    pub cfg: RelayConfig,
    /// `None`: plain relay, nothing decoded in the pumps.
    plan: Option<Mutex<FaultPlan>>,
    tx: SyncSender<Msg>,
    epoch: Instant,
    pub stop: AtomicBool,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Pump threads running.
    pub pumps: AtomicUsize,
    /// Connections accepted / ended.
    pub accepted: AtomicU64,
    pub ended: AtomicU64,
    /// Last octet relayed (ms since `epoch`).
    pub last_activity: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("accepted", &self.accepted).field("ended", &self.ended).finish()
    }
}

impl Shared {
    /// Faults the plan has decided so far (each is applied and posted to
    /// the observer with its note, unless its connection closed first).
    pub fn faults_decided(&self) -> u64 {
        self.plan.as_ref().map_or(0, |p| lock(p).injected())
    }

    pub fn new(cfg: RelayConfig, plan: FaultPlan, tx: SyncSender<Msg>) -> Arc<Self> {
        Arc::new(Shared {
            cfg,
            plan: (!plan.is_empty()).then(|| Mutex::new(plan)),
            tx,
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            pumps: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
        })
    }

    fn ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Milliseconds since the last relayed octet (or the start).
    pub fn idle_ms(&self) -> u64 {
        self.ms().saturating_sub(self.last_activity.load(Ordering::Relaxed))
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        lock(&self.conns).len()
    }

    fn send(&self, m: Msg) {
        // The observer went away only at shutdown: nothing to tell.
        let _ = self.tx.send(m);
    }

    /// Close every open connection (FIN to both MTAs): shutdown.
    pub fn close_all(&self) {
        let all: Vec<Arc<Conn>> = lock(&self.conns).values().cloned().collect();
        for c in all {
            teardown(self, &c, DropKind::Fin, "proxy stopping");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One relayed connection.
pub struct Conn {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
    /// Torn down: the pumps stop, pass nothing on.
    dead: AtomicBool,
    /// The observer was told the connection is over.
    closed: AtomicBool,
    /// Directions that ended by FIN.
    fins: AtomicUsize,
    /// Last octet either way (ms since the epoch of [`Shared`]).
    last: AtomicU64,
    /// The decoder the fault plan reads (both directions).
    dec: Mutex<AssociationDecoder>,
    /// Held by a pump from its check of `dead` through posting octets and
    /// writing them, and by a teardown to post the Close: octets the other
    /// pump passes on while a fault tears the connection down reach the
    /// observer before the Close, as they reach the MTA before the reset.
    order: Mutex<()>,
}

impl Conn {
    fn streams(&self, from: Sender) -> (&TcpStream, &TcpStream) {
        match from {
            Sender::Initiator => (&self.client, &self.upstream),
            Sender::Responder => (&self.upstream, &self.client),
        }
    }
}

fn close_msg(sh: &Shared, c: &Conn, rst: bool, reason: &str) {
    if !c.closed.swap(true, Ordering::SeqCst) {
        sh.send(Msg::Close { conn: c.id, rst, time: now(), reason: reason.to_string() });
    }
}

/// A write to the MTA on side `to` failed: reset the connection.
fn unwritable(sh: &Shared, c: &Conn, to: Side) {
    teardown(sh, c, DropKind::Rst, &format!("cannot write to the {} MTA", to.name()));
}

/// End the connection: FIN or RST to both MTAs (an abort first sends the
/// forged AB to both). Only the first call acts.
fn teardown(sh: &Shared, c: &Conn, kind: DropKind, reason: &str) {
    if c.dead.swap(true, Ordering::SeqCst) {
        return;
    }
    match kind {
        DropKind::Fin | DropKind::Abort => {
            if kind == DropKind::Abort {
                let ab = forged_abort();
                sh.send(Msg::Forged { conn: c.id, bytes: ab.clone(), time: now() });
                // A peer that does not read does not hold the teardown up
                // for long: the socket is going anyway.
                for s in [&c.upstream, &c.client] {
                    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = (&*s).write_all(&ab);
                }
            }
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.upstream.shutdown(Shutdown::Both);
            let _order = lock(&c.order);
            close_msg(sh, c, false, reason);
        }
        DropKind::Rst | DropKind::MidTpkt => {
            // RST when the last descriptor closes (the pumps' exit); no
            // FIN before it: SHUT_RD only wakes the blocked reads.
            for s in [&c.client, &c.upstream] {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                let _ = s.shutdown(Shutdown::Read);
            }
            let _order = lock(&c.order);
            close_msg(sh, c, true, reason);
        }
    }
}

/// A session AB (Transport Disconnect: release; no user data) in an X.224
/// DT in a TPKT: what a forged session abort sends to each MTA.
pub fn forged_abort() -> Vec<u8> {
    use rtse_codec::session::{self, Spdu, Tsdu};
    crate::synth::Pdus::tpkt(&Tsdu::one(Spdu::ab(session::TD_RELEASE, None)))
}

/// Accept connections until `sh.stop`; one pair of pumps each.
pub fn accept_loop(sh: &Arc<Shared>, listener: &TcpListener) {
    let _ = listener.set_nonblocking(true);
    let listen = listener.local_addr().ok();
    let mut next_id = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, peer)) => {
                let _ = client.set_nonblocking(false);
                if sh.live() >= sh.cfg.max_conns {
                    drop(client);
                    continue;
                }
                let id = next_id;
                next_id += 1;
                sh.accepted.fetch_add(1, Ordering::Relaxed);
                sh.pumps.fetch_add(1, Ordering::SeqCst);
                let sh2 = Arc::clone(sh);
                let listen = listen.unwrap_or(peer);
                let spawned = std::thread::Builder::new()
                    .name(format!("proxy-c{id}"))
                    .stack_size(STACK)
                    .spawn(move || start_conn(&sh2, id, client, peer, listen));
                if spawned.is_err() {
                    sh.pumps.fetch_sub(1, Ordering::SeqCst);
                    sh.ended.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_for_connection(listener),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Until a connection waits on `listener` (or 50 ms passed: `stop` is
/// checked): poll(2) on Linux, rather than waking every few milliseconds.
#[cfg(target_os = "linux")]
fn wait_for_connection(listener: &TcpListener) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let timeout = Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
    if poll(&mut fds, Some(&timeout)).is_err() {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(not(target_os = "linux"))]
fn wait_for_connection(_listener: &TcpListener) {
    std::thread::sleep(Duration::from_millis(2));
}

/// Connect upstream, then run the client-to-upstream pump in this thread
/// and the other in a new one.
fn start_conn(sh: &Arc<Shared>, id: u64, client: TcpStream, peer: SocketAddr, listen: SocketAddr) {
    let upstream = match TcpStream::connect_timeout(&sh.cfg.upstream, sh.cfg.connect_timeout) {
        Ok(u) => u,
        Err(e) => {
            sh.send(Msg::ConnectFailed { conn: id, client: peer, error: e.to_string() });
            drop(client);
            sh.pumps.fetch_sub(1, Ordering::SeqCst);
            sh.ended.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    for s in [&client, &upstream] {
        let _ = s.set_nodelay(true);
        let _ = socket2::SockRef::from(s).set_keepalive(true);
        let _ = s.set_write_timeout(Some(sh.cfg.idle));
        let _ = s.set_read_timeout(Some(sh.cfg.idle.min(Duration::from_secs(1))));
    }
    let local = upstream.local_addr().unwrap_or(sh.cfg.upstream);
    sh.send(Msg::Open { conn: id, client: peer, listen, local, upstream: sh.cfg.upstream, time: now() });
    let c = Arc::new(Conn {
        id,
        client,
        upstream,
        dead: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        fins: AtomicUsize::new(0),
        last: AtomicU64::new(sh.ms()),
        dec: Mutex::new(AssociationDecoder::new()),
        order: Mutex::new(()),
    });
    lock(&sh.conns).insert(id, Arc::clone(&c));
    if sh.stop.load(Ordering::Relaxed) {
        teardown(sh, &c, DropKind::Fin, "proxy stopping");
    }
    sh.pumps.fetch_add(1, Ordering::SeqCst);
    let (sh2, c2) = (Arc::clone(sh), Arc::clone(&c));
    let other = std::thread::Builder::new().name(format!("proxy-c{id}r")).stack_size(STACK).spawn(move || {
        pump(&sh2, &c2, Sender::Responder);
        sh2.pumps.fetch_sub(1, Ordering::SeqCst);
    });
    if other.is_err() {
        sh.pumps.fetch_sub(1, Ordering::SeqCst);
        teardown(sh, &c, DropKind::Rst, "cannot start a thread");
    }
    pump(sh, &c, Sender::Initiator);
    if let Ok(h) = other {
        let _ = h.join();
    }
    lock(&sh.conns).remove(&id);
    close_msg(sh, &c, false, "closed");
    sh.ended.fetch_add(1, Ordering::Relaxed);
    sh.pumps.fetch_sub(1, Ordering::SeqCst);
}

/// The Turn-relevant PDU names of one complete TPKT, through the
/// connection's decoder.
fn names_of(c: &Conn, from: Sender, tpkt: &[u8]) -> Vec<&'static str> {
    let mut names = Vec::new();
    lock(&c.dec).push(from, tpkt, |d| {
        if let Ok(stack) = d.result {
            crate::observe::events(&stack, |e| names.push(e.name()));
        }
    });
    names
}

/// One direction's state: the read buffer (shared with the observer, see
/// [`Chunk`]), and in splice mode the pipes holding the octets not yet
/// passed on.
struct Pump<'a> {
    sh: &'a Shared,
    c: &'a Conn,
    from: Sender,
    src: &'a TcpStream,
    dst: &'a TcpStream,
    /// `buf[..filled]`: octets received and not yet passed on or dropped
    /// (an incomplete TPKT, with a plan), then what the last read added.
    buf: Arc<Buf>,
    filled: usize,
    /// Splice mode: the last `in_pipe` octets of `buf[..filled]` are also
    /// in the forwarding pipe, and are sent from there.
    pipes: Option<Pipes>,
    in_pipe: usize,
    mode: RelayMode,
}

impl<'a> Pump<'a> {
    fn new(sh: &'a Shared, c: &'a Conn, from: Sender) -> Self {
        let (src, dst) = c.streams(from);
        let mode = sh.cfg.mode;
        Pump {
            sh,
            c,
            from,
            src,
            dst,
            buf: new_buf(),
            filled: 0,
            pipes: if mode == RelayMode::Splice { Pipes::new(BUF).ok() } else { None },
            in_pipe: 0,
            mode,
        }
    }

    /// Drops `buf[..at]` (passed on or dropped) and moves the rest to the
    /// front of a buffer this pump may write: when the observer still
    /// holds the current one, a buffer from the pool takes its place.
    fn rebase(&mut self, at: usize) {
        let filled = self.filled;
        match Arc::get_mut(&mut self.buf) {
            Some(buf) => {
                if at > 0 && at < filled {
                    buf.0.copy_within(at..filled, 0);
                }
            }
            None => {
                let mut fresh = new_buf();
                if let Some(f) = Arc::get_mut(&mut fresh) {
                    f.0[..filled - at].copy_from_slice(&self.buf.0[at..filled]);
                }
                // The observer returns the old one to the pool.
                self.buf = fresh;
            }
        }
        self.filled = filled - at;
    }

    /// Read what the MTA sent after `buf[..filled]`.
    fn read(&mut self) -> std::io::Result<usize> {
        if self.in_pipe > 0 {
            // An incomplete TPKT left in the pipe: out of it (it is in the
            // buffer too, and will be written from there), so that the
            // splice below finds the pipe empty.
            if let Some(p) = &mut self.pipes {
                p.discard(self.in_pipe)?;
            }
            self.in_pipe = 0;
        }
        let at = self.filled;
        self.rebase(0);
        let Some(Buf(buf)) = Arc::get_mut(&mut self.buf) else {
            // `rebase` made it this pump's own.
            return Err(std::io::Error::other("read buffer shared"));
        };
        match &mut self.pipes {
            Some(p) => {
                let (n, in_pipe) = p.fill(self.src, &mut buf[at..])?;
                self.in_pipe = in_pipe;
                Ok(n)
            }
            None => {
                let n = (&*self.src).read(&mut buf[at..])?;
                if n >= BULK && self.mode == RelayMode::Auto {
                    // Bulk data: splice from the next read on (or keep
                    // copying when pipes cannot be had).
                    self.pipes = Pipes::new(BUF).ok();
                    self.mode = RelayMode::Copy;
                }
                Ok(n)
            }
        }
    }

    /// `buf[a..b]` as the observer gets it: small ones copied (they must
    /// not hold a whole buffer), large ones shared.
    fn chunk(&self, a: usize, b: usize) -> Chunk {
        if b - a <= SMALL {
            Chunk::from(self.buf.0[a..b].to_vec())
        } else {
            Chunk { buf: Arc::clone(&self.buf), start: a, end: b }
        }
    }

    /// Passes `buf[a..b]` on to the other MTA (`send`) or drops it,
    /// in stream order: octets before `a` were passed on or dropped.
    fn out(&mut self, a: usize, b: usize, send: bool) -> std::io::Result<()> {
        let piped = self.filled - self.in_pipe;
        if send && a < piped.min(b) {
            (&*self.dst).write_all(&self.buf.0[a..piped.min(b)])?;
        }
        if b > piped {
            if let Some(p) = &mut self.pipes {
                if a > piped {
                    // Never passed on (cannot happen: calls are in order).
                    p.discard(a - piped)?;
                    self.in_pipe -= a - piped;
                }
                let k = b - a.max(piped);
                if send {
                    p.send(self.dst, k)?;
                } else {
                    p.discard(k)?;
                }
                self.in_pipe -= k;
            }
        }
        Ok(())
    }

    /// Posts `msg` to the observer and passes `buf[a..b]` on (or drops it),
    /// as one step with respect to a teardown (see `Conn::order`): `None`
    /// when the connection is already torn down (nothing posted, nothing
    /// written), else whether the write succeeded.
    fn post_out(&mut self, msg: Msg, a: usize, b: usize, send: bool) -> Option<bool> {
        let c = self.c;
        let _order = lock(&c.order);
        if c.dead.load(Ordering::SeqCst) {
            return None;
        }
        self.sh.send(msg);
        Some(self.out(a, b, send).is_ok())
    }

    /// `post_out` for a fault's step, with `Conn::order` already held by
    /// the caller since before the decision: posts unless the observer was
    /// already told of the Close. A teardown the other pump began after the
    /// decision (it sets `dead` without the lock, then waits for it to post
    /// the Close) does not swallow the fault: its note is posted, before
    /// the Close, and the write is tried (it may fail; the teardown goes
    /// on either way).
    fn post_decided(&mut self, msg: Msg, a: usize, b: usize, send: bool) -> Option<bool> {
        if self.c.closed.load(Ordering::SeqCst) {
            return None;
        }
        self.sh.send(msg);
        Some(self.out(a, b, send).is_ok())
    }

    /// Tell the observer about `buf[a..b]`, then pass it on: false when
    /// that failed (the connection is then torn down).
    fn forward(&mut self, a: usize, b: usize, time: Timestamp) -> bool {
        if a == b {
            return true;
        }
        let (sh, c, from) = (self.sh, self.c, self.from);
        let msg = Msg::Data { conn: c.id, from, received: self.chunk(a, b), forwarded: b - a, time, fault: None };
        match self.post_out(msg, a, b, true) {
            None => false,
            Some(true) => true,
            Some(false) => {
                unwritable(sh, c, crate::observe::side(from.peer()));
                false
            }
        }
    }
}

/// One direction: read from `from`'s MTA, apply the plan, write to the
/// other.
fn pump(sh: &Shared, c: &Conn, from: Sender) {
    let mut p = Pump::new(sh, c, from);
    let mut framed = true;
    // Stream offset of buf[0].
    let mut offset = 0u64;
    let side = crate::observe::side(from);
    loop {
        if c.dead.load(Ordering::SeqCst) {
            return;
        }
        let n = match p.read() {
            Ok(0) => {
                if c.dead.load(Ordering::SeqCst) {
                    return;
                }
                // Unframed leftovers (a TPKT cut by the FIN) go on as read.
                if p.filled > 0 {
                    let filled = p.filled;
                    let msg = Msg::Data {
                        conn: c.id,
                        from,
                        forwarded: filled,
                        received: p.chunk(0, filled),
                        time: now(),
                        fault: None,
                    };
                    if p.post_out(msg, 0, filled, true).is_none() {
                        return;
                    }
                }
                if p.post_out(Msg::Fin { conn: c.id, from, time: now() }, 0, 0, true).is_none() {
                    return;
                }
                let _ = p.dst.shutdown(Shutdown::Write);
                if c.fins.fetch_add(1, Ordering::SeqCst) == 1 {
                    close_msg(sh, c, false, "closed by both MTAs");
                }
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let quiet = sh.ms().saturating_sub(c.last.load(Ordering::Relaxed));
                if quiet >= sh.cfg.idle.as_millis() as u64 {
                    teardown(sh, c, DropKind::Fin, "idle");
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                teardown(sh, c, DropKind::Rst, &format!("{} MTA: {e}", side.name()));
                return;
            }
        };
        if c.dead.load(Ordering::SeqCst) {
            return;
        }
        let ms = sh.ms();
        c.last.store(ms, Ordering::Relaxed);
        sh.last_activity.store(ms, Ordering::Relaxed);
        p.filled += n;
        let filled = p.filled;
        let time = now();
        if sh.plan.is_none() || !framed {
            if !p.forward(0, filled, time) {
                return;
            }
            offset += filled as u64;
            p.rebase(filled);
            continue;
        }
        // [sent, at): complete TPKTs to forward as they are.
        let (mut sent, mut at) = (0usize, 0usize);
        let mut stop = false;
        while at < filled && !stop {
            let len = match rtse_codec::tpkt::frame_len(&p.buf.0[at..filled]) {
                Ok(Some(len)) if at + len <= filled => len,
                Ok(_) => break,
                Err(e) => {
                    framed = false;
                    sh.send(Msg::Unframed { conn: c.id, from, at: offset + at as u64, error: e.to_string() });
                    at = filled;
                    break;
                }
            };
            let names = names_of(c, from, &p.buf.0[at..at + len]);
            let plan = match &sh.plan {
                Some(plan) if !names.is_empty() => plan,
                _ => {
                    at += len;
                    continue;
                }
            };
            // Decide and post the fault as one step with respect to a
            // teardown. A TPKT that reaches the plan once the connection is
            // being torn down is not relayed, so it is not an occurrence
            // either: no rule counts it or fires on it (`#N` is the N-th
            // relayed), and the fault goes to the next one relayed, on the
            // recovered association. Before this, a rule could fire on such
            // a TPKT and be used up without being applied or logged.
            let order = lock(&c.order);
            if c.dead.load(Ordering::SeqCst) {
                return;
            }
            let decision = lock(plan).decide(side, &names);
            let Some(effect) = decision.effect else {
                drop(order);
                at += len;
                continue;
            };
            let note = Some(FaultNote { effect, why: decision.why, pdus: names });
            // This TPKT read but not forwarded, with the fault's note.
            let unforwarded = move |p: &Pump, note| Msg::Data {
                conn: c.id,
                from,
                received: p.chunk(at, at + len),
                forwarded: 0,
                time,
                fault: note,
            };
            // The TPKTs before this one go on first, in the same step.
            if sent < at {
                let msg = Msg::Data {
                    conn: c.id,
                    from,
                    received: p.chunk(sent, at),
                    forwarded: at - sent,
                    time,
                    fault: None,
                };
                match p.post_decided(msg, sent, at, true) {
                    None => return,
                    Some(true) => {}
                    Some(false) => {
                        // The fault is logged even so, as not applied.
                        let _ = p.post_decided(unforwarded(&p, note), at, at + len, false);
                        drop(order);
                        unwritable(sh, c, side.peer());
                        return;
                    }
                }
                sent = at;
            }
            match effect {
                Effect::DropBefore(kind) => {
                    let half = if kind == DropKind::MidTpkt { len / 2 } else { 0 };
                    let received = p.chunk(at, filled);
                    let msg = Msg::Data { conn: c.id, from, received, forwarded: half, time, fault: note };
                    let _ = p.post_decided(msg, at, at + half, true);
                    drop(order);
                    teardown(sh, c, kind, "fault");
                    stop = true;
                }
                Effect::DropAfter(kind) => {
                    let received = p.chunk(at, filled);
                    let msg = Msg::Data { conn: c.id, from, received, forwarded: len, time, fault: note };
                    let _ = p.post_decided(msg, at, at + len, true);
                    drop(order);
                    teardown(sh, c, kind, "fault");
                    stop = true;
                }
                Effect::Withhold => {
                    if p.post_decided(unforwarded(&p, note), at, at + len, false).is_none() {
                        return;
                    }
                    drop(order);
                    at += len;
                    sent = at;
                }
                Effect::Delay(ms) => {
                    drop(order);
                    std::thread::sleep(Duration::from_millis(ms));
                    let t = now();
                    let order = lock(&c.order);
                    // Torn down during the delay: the TPKT was never passed
                    // on; say so (unless the Close is already out).
                    let send = !c.dead.load(Ordering::SeqCst);
                    let msg = Msg::Data {
                        conn: c.id,
                        from,
                        received: p.chunk(at, at + len),
                        forwarded: if send { len } else { 0 },
                        time: t,
                        fault: note,
                    };
                    let wrote = p.post_decided(msg, at, at + len, send);
                    drop(order);
                    match wrote {
                        Some(true) if send => {}
                        None | Some(true) => return,
                        Some(false) => {
                            unwritable(sh, c, side.peer());
                            return;
                        }
                    }
                    at += len;
                    sent = at;
                }
            }
        }
        if stop {
            return;
        }
        if !p.forward(sent, at, time) {
            return;
        }
        p.rebase(at);
        offset += at as u64;
    }
}
