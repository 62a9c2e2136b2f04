//! [`InlineList`]: a list that keeps its first `N` items inline and
//! allocates only when it holds more.
//!
//! Decoded PDUs hold many short lists (a CP's three or four presentation
//! contexts, each with one transfer syntax; an AARQ's one EXTERNAL): as
//! `Vec`s they cost an allocation and a free each, about 17,000 pairs at
//! the timeline benchmark's 10 MB. Written without `unsafe`: the inline
//! slots are filled with `T::default()` until used, so that the items are
//! always one contiguous slice.

use core::fmt;

/// A list of `T` that stores up to `N` items inline and spills all of them
/// into a `Vec` past that. Behaves as the `Vec<T>` it replaces: it derefs
/// to `[T]`, compares, shows (`Debug`) and serialises as that slice.
#[derive(Clone)]
pub struct InlineList<T, const N: usize> {
    // Invariant: `len <= N` and the items are `inline[..len]` (`spill`
    // empty), or `len > N` and they are `spill` (`spill.len() == len`;
    // `inline` holds defaults).
    len: usize,
    inline: [T; N],
    spill: Vec<T>,
}

impl<T: Default, const N: usize> InlineList<T, N> {
    /// An empty list (no allocation).
    pub fn new() -> Self {
        InlineList { len: 0, inline: core::array::from_fn(|_| T::default()), spill: Vec::new() }
    }

    /// Append `v`; the first push past `N` moves the items into the heap.
    pub fn push(&mut self, v: T) {
        if self.len < N {
            self.inline[self.len] = v;
        } else {
            if self.len == N {
                self.spill.reserve_exact(N + 1);
                self.spill.extend(self.inline.iter_mut().map(core::mem::take));
            }
            self.spill.push(v);
        }
        self.len += 1;
    }

    /// Remove every item (keeping the heap part's capacity, if any).
    pub fn clear(&mut self) {
        for x in &mut self.inline[..self.len.min(N)] {
            *x = T::default();
        }
        self.spill.clear();
        self.len = 0;
    }
}

impl<T, const N: usize> InlineList<T, N> {
    /// The items.
    pub fn as_slice(&self) -> &[T] {
        if self.len <= N {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }

    /// The items, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        if self.len <= N {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill
        }
    }

    /// Whether the items have moved to the heap (more than `N`).
    pub fn spilled(&self) -> bool {
        self.len > N
    }
}

impl<T: Default, const N: usize> Default for InlineList<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> core::ops::Deref for InlineList<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T, const N: usize> core::ops::DerefMut for InlineList<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: PartialEq, const N: usize> PartialEq for InlineList<T, N> {
    fn eq(&self, o: &Self) -> bool {
        self.as_slice() == o.as_slice()
    }
}
impl<T: Eq, const N: usize> Eq for InlineList<T, N> {}

impl<T: fmt::Debug, const N: usize> fmt::Debug for InlineList<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl<T: serde::Serialize, const N: usize> serde::Serialize for InlineList<T, N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

impl<T: Default, const N: usize> FromIterator<T> for InlineList<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        let mut l = Self::new();
        for v in it {
            l.push(v);
        }
        l
    }
}

impl<T: Default, const N: usize> From<Vec<T>> for InlineList<T, N> {
    fn from(v: Vec<T>) -> Self {
        if v.len() <= N {
            v.into_iter().collect()
        } else {
            InlineList { len: v.len(), inline: core::array::from_fn(|_| T::default()), spill: v }
        }
    }
}

impl<'l, T, const N: usize> IntoIterator for &'l InlineList<T, N> {
    type Item = &'l T;
    type IntoIter = core::slice::Iter<'l, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::InlineList;

    /// Pushes, reads and compares as a `Vec` does, across the spill.
    #[test]
    fn behaves_as_vec() {
        let mut l: InlineList<String, 2> = InlineList::new();
        let mut v: Vec<String> = Vec::new();
        for i in 0..7 {
            assert_eq!(l.as_slice(), v.as_slice());
            assert_eq!(l.len(), v.len());
            assert_eq!(l.spilled(), v.len() > 2);
            assert_eq!(format!("{l:?}"), format!("{v:?}"));
            assert_eq!(serde_json::to_string(&l).unwrap(), serde_json::to_string(&v).unwrap());
            assert_eq!(l.iter().collect::<Vec<_>>(), v.iter().collect::<Vec<_>>());
            assert_eq!(InlineList::<String, 2>::from(v.clone()), l);
            assert_eq!(v.iter().cloned().collect::<InlineList<String, 2>>(), l);
            assert_eq!(l.clone(), l);
            l.push(i.to_string());
            v.push(i.to_string());
        }
        let mut c = l.clone();
        c.clear();
        assert!(c.is_empty() && !c.spilled());
        c.push("a".into());
        assert_eq!(c.as_slice(), ["a".to_string()]);
        let mut c: InlineList<String, 2> = vec!["x".into()].into();
        c.clear();
        assert_eq!(c, InlineList::new());
        l[5].push('x');
        v[5].push('x');
        assert_eq!(l.as_slice(), v.as_slice());
        assert!(l.spilled());
        // Lists with the same items are equal however they were built.
        let a: InlineList<u8, 1> = vec![1, 2].into();
        let mut b: InlineList<u8, 1> = InlineList::new();
        b.push(1);
        assert_ne!(a, b);
        b.push(2);
        assert_eq!(a, b);
        assert_eq!(InlineList::<u8, 3>::default().as_slice(), &[] as &[u8]);
    }
}
