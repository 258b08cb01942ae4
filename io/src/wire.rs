//! Byte encoding of the small descriptions rank 0 broadcasts (namespace and projection structure).
//! Little-endian, length-prefixed, private to this crate: both ends are the same binary.

#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub fn u64s(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(bytemuck::cast_slice(v));
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    pub fn str(&mut self) -> String {
        let n = self.u64() as usize;
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
    pub fn u64s(&mut self) -> Vec<u64> {
        let n = self.u64() as usize;
        let mut v = vec![0u64; n];
        bytemuck::cast_slice_mut(&mut v).copy_from_slice(self.take(n * 8));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut w = Writer::default();
        w.str("Synapse Attributes");
        w.u64s(&[1, 2, 3]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.str(), "Synapse Attributes");
        assert_eq!(r.u64s(), vec![1, 2, 3]);
        assert!(r.done());
    }
}
