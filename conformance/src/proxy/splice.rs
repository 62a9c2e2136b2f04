//! Linux zero-copy for the pumps (`--relay splice`, and `auto` once a
//! connection carries bulk data): splice(2) and tee(2) through two pipes,
//! through rustix's safe wrappers (the crate forbids unsafe code).
//!
//! ```text
//!  socket ─splice─▶ forwarding pipe ─splice─▶ other socket
//!                        │ tee
//!                        ▼
//!                   copy pipe ─read─▶ pump buffer (observer, fault plan)
//! ```
//!
//! The octets cross user space once (the read of the copy pipe) instead of
//! twice (read, then write): the observer and the fault plan see exactly
//! the octets the forwarding pipe holds. Elsewhere than Linux [`Pipes::new`]
//! fails and the pumps copy.

use std::io;
use std::net::TcpStream;

#[cfg(target_os = "linux")]
mod imp {
    use rustix::io::Errno;
    use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, tee, PipeFlags, SpliceFlags};
    use std::fs::File;
    use std::io::{self, Read};
    use std::net::TcpStream;
    use std::os::fd::OwnedFd;
    use std::sync::OnceLock;

    /// The two pipes of one pump.
    pub struct Pipes {
        /// Octets read from the socket, waiting to be spliced to the other.
        fwd_r: File,
        fwd_w: OwnedFd,
        /// A tee of them, read into the pump's buffer.
        copy_r: File,
        copy_w: OwnedFd,
        cap: usize,
    }

    /// Where discarded octets go without a copy (else a scratch buffer).
    fn dev_null() -> Option<&'static File> {
        static NULL: OnceLock<Option<File>> = OnceLock::new();
        NULL.get_or_init(|| std::fs::OpenOptions::new().write(true).open("/dev/null").ok()).as_ref()
    }

    fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> io::Result<T> {
        loop {
            match f() {
                Err(Errno::INTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }

    impl Pipes {
        pub fn new(want: usize) -> io::Result<Pipes> {
            let (fwd_r, fwd_w) = pipe_with(PipeFlags::CLOEXEC)?;
            let (copy_r, copy_w) = pipe_with(PipeFlags::CLOEXEC)?;
            // Over the system's limit (fs.pipe-max-size, or the user's pipe
            // pages) the pipes keep their default size: slower, not wrong.
            let _ = fcntl_setpipe_size(&fwd_w, want);
            let _ = fcntl_setpipe_size(&copy_w, want);
            let cap = fcntl_getpipe_size(&fwd_w)?.min(fcntl_getpipe_size(&copy_w)?).min(want);
            Ok(Pipes { fwd_r: File::from(fwd_r), fwd_w, copy_r: File::from(copy_r), copy_w, cap })
        }

        pub fn fill(&mut self, src: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, usize)> {
            let len = buf.len().min(self.cap);
            if len == 0 {
                return Ok((0, 0));
            }
            // Blocking, with the socket's read timeout (EAGAIN, as a read).
            let n = splice(src, None, &self.fwd_w, None, len, SpliceFlags::empty())?;
            if n == 0 {
                return Ok((0, 0));
            }
            let t = retry(|| tee(&self.fwd_r, &self.copy_w, n, SpliceFlags::empty()))?;
            (&self.copy_r).read_exact(&mut buf[..t])?;
            if t == n {
                return Ok((n, n));
            }
            // The copy pipe took less than all of it (tee copies pipe
            // buffers, not octets): take the octets out of the forwarding
            // pipe instead; they are then written from user space.
            (&self.fwd_r).read_exact(&mut buf[..n])?;
            Ok((n, 0))
        }

        pub fn send(&mut self, dst: &TcpStream, mut n: usize) -> io::Result<()> {
            while n > 0 {
                match retry(|| splice(&self.fwd_r, None, dst, None, n, SpliceFlags::empty()))? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    k => n -= k.min(n),
                }
            }
            Ok(())
        }

        pub fn discard(&mut self, mut n: usize) -> io::Result<()> {
            if let Some(null) = dev_null() {
                while n > 0 {
                    match retry(|| splice(&self.fwd_r, None, null, None, n, SpliceFlags::empty())) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n -= k.min(n),
                    }
                }
            }
            let mut scratch = [0u8; 4096];
            while n > 0 {
                let k = n.min(scratch.len());
                (&self.fwd_r).read_exact(&mut scratch[..k])?;
                n -= k;
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::TcpStream;

    pub struct Pipes;

    fn unsupported() -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, "splice(2) is Linux only")
    }

    impl Pipes {
        pub fn new(_want: usize) -> io::Result<Pipes> {
            Err(unsupported())
        }
        pub fn fill(&mut self, _src: &TcpStream, _buf: &mut [u8]) -> io::Result<(usize, usize)> {
            Err(unsupported())
        }
        pub fn send(&mut self, _dst: &TcpStream, _n: usize) -> io::Result<()> {
            Err(unsupported())
        }
        pub fn discard(&mut self, _n: usize) -> io::Result<()> {
            Err(unsupported())
        }
    }
}

/// The forwarding and copy pipes of one pump.
pub struct Pipes(imp::Pipes);

impl Pipes {
    /// Two pipes of (up to) `want` octets each; fails where splice(2) is
    /// not available, or out of descriptors: the pump then copies.
    pub fn new(want: usize) -> io::Result<Pipes> {
        imp::Pipes::new(want).map(Pipes)
    }

    /// Moves what `src` has (up to `buf.len()` and the pipes' capacity)
    /// into the forwarding pipe, and a copy of it into `buf`. Returns
    /// `(n, in_pipe)`: `n` octets read (0 at the end of the stream), of
    /// which the last `in_pipe` are in the forwarding pipe (all of them,
    /// or none when the copy fell short and they were read out of it).
    /// The forwarding pipe must be empty.
    pub fn fill(&mut self, src: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, usize)> {
        self.0.fill(src, buf)
    }

    /// Splices the next `n` octets of the forwarding pipe to `dst`.
    pub fn send(&mut self, dst: &TcpStream, n: usize) -> io::Result<()> {
        self.0.send(dst, n)
    }

    /// Drops the next `n` octets of the forwarding pipe.
    pub fn discard(&mut self, n: usize) -> io::Result<()> {
        self.0.discard(n)
    }
}
