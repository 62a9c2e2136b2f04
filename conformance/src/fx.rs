//! FxHash, for the hash tables on hot paths (the model check's states and
//! caches, the machine's memo of short PDUs): keys are small, built by us,
//! and compared in full on a hash match, so a fast, weak hash costs only
//! time on collisions (SipHash's protection against chosen keys buys
//! nothing here).
#![forbid(unsafe_code)]

use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's hasher): a multiply-rotate per word. States are
/// compared in full on a hash match, so its weakness costs only time.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        for &b in c.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type FxBuild = BuildHasherDefault<Fx>;
