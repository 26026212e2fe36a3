//! A check of a sequential (baseline or extended, Huffman-coded) JPEG's entropy-coded data,
//! as libjpeg makes while decoding: every Huffman code valid, no coefficient run past the
//! block's 64th coefficient, restart markers in sequence, the scan ending exactly where its
//! data ends (no premature marker, no extraneous bytes), and every frame component scanned.
//!
//! Why: a JPEG whose entropy data was damaged (a bad sector, a broken transfer) keeps its
//! markers, and the decoder underneath (zune-jpeg, even in strict mode) resynchronises on the
//! damaged Huffman stream and returns garbage pixels without complaint. Pillow (libjpeg) refuses
//! such files. The walk decodes code lengths only (no dequantisation, no IDCT), through a lookup
//! table, so it costs a fraction of the decode.
//!
//! Progressive and arithmetic-coded JPEGs are left to the decoder's own checks.

/// Bits looked up at once; longer codes (rare) take the slow path.
const LOOKUP_BITS: u32 = 10;

/// A Huffman table: fast lookup for short codes, canonical decoding for the rest.
struct Huffman {
    /// For each `LOOKUP_BITS`-bit prefix: `symbol << 8 | folded << 5 | bits`, where `bits` is
    /// what to consume (0: a longer or invalid code, slow path) and `folded` says whether the
    /// symbol's extra (magnitude) bits are included in `bits`.
    fast: Box<[u32; 1 << LOOKUP_BITS]>,
    /// For lengths 1..=16: the largest code of that length (or -1), and where its symbols start.
    maxcode: [i32; 17],
    valoff: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    /// `extra(symbol)`: the magnitude bits that follow the code (DC: the symbol; AC: its low
    /// nibble).
    fn new(counts: &[u8; 16], values: Vec<u8>, extra: fn(u8) -> u32) -> Result<Huffman, String> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total != values.len() || total > 256 {
            return Err("malformed Huffman table".into());
        }
        let mut fast = Box::new([0u32; 1 << LOOKUP_BITS]);
        let mut maxcode = [-1i32; 17];
        let mut valoff = [0i32; 17];
        let (mut code, mut k) = (0u32, 0usize);
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            valoff[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= (1 << len) {
                    return Err("malformed Huffman table (codes overflow their length)".into());
                }
                if len <= LOOKUP_BITS {
                    let sym = values[k];
                    let total = len + extra(sym);
                    let entry = if total <= LOOKUP_BITS {
                        (sym as u32) << 8 | 1 << 5 | total
                    } else {
                        (sym as u32) << 8 | len
                    };
                    let shift = LOOKUP_BITS - len;
                    let first = (code << shift) as usize;
                    for e in &mut fast[first..first + (1 << shift)] {
                        *e = entry;
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Ok(Huffman {
            fast,
            maxcode,
            valoff,
            values,
        })
    }
}

/// The entropy-coded bits of one scan.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    /// Bits in `buf`, and how many of them are zero padding past a marker.
    count: u32,
    padding: u32,
    /// Position of the marker that ended the data, once met.
    marker: Option<usize>,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            buf: 0,
            count: 0,
            padding: 0,
            marker: None,
        }
    }

    #[inline]
    fn fill(&mut self) {
        // Fast path: the next 8 bytes hold no 0xFF (no stuffing, no marker): take as many
        // whole bytes as fit at once.
        if self.marker.is_none()
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
        {
            let w = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
            let inv = !w;
            let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let k = (64 - self.count) / 8;
                self.buf |= (w >> (64 - 8 * k)) << (64 - self.count - 8 * k);
                self.count += 8 * k;
                self.pos += k as usize;
                return;
            }
        }
        while self.count <= 56 {
            let byte = match self.data.get(self.pos) {
                Some(&b) if b != 0xFF && self.marker.is_none() => {
                    self.pos += 1;
                    b
                }
                Some(0xFF) if self.marker.is_none() && self.data.get(self.pos + 1) == Some(&0) => {
                    self.pos += 2;
                    0xFF
                }
                _ => {
                    if self.marker.is_none() {
                        self.marker = Some(self.pos);
                    }
                    self.padding += 8;
                    0
                }
            };
            self.buf |= (byte as u64) << (56 - self.count);
            self.count += 8;
        }
    }

    /// The next `n` (≤ 32) bits; the caller has made sure `count ≥ n`.
    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.count -= n;
    }

    /// Whether the walk has eaten into the zero padding past the data's end. Padding sits at
    /// the end of the buffer and grows with it, so once eaten this stays true.
    fn overran(&self) -> bool {
        self.count < self.padding
    }

    /// Decodes one symbol and consumes its extra bits; returns the symbol, or None for an
    /// invalid code. A symbol takes at most 16 + 16 bits, so one refill covers it.
    #[inline(always)]
    fn symbol<const DC: bool>(&mut self, h: &Huffman) -> Option<u8> {
        if self.count < 32 {
            self.fill();
        }
        let e = h.fast[(self.peek(LOOKUP_BITS) as usize) & ((1 << LOOKUP_BITS) - 1)];
        let sym = (e >> 8) as u8;
        if e & 31 != 0 {
            let mut n = e & 31;
            if e & (1 << 5) == 0 {
                n += if DC { dc_extra(sym) } else { ac_extra(sym) };
            }
            self.consume(n);
            return Some(sym);
        }
        self.slow_symbol(h, if DC { dc_extra } else { ac_extra })
    }

    #[cold]
    fn slow_symbol(&mut self, h: &Huffman, extra: fn(u8) -> u32) -> Option<u8> {
        let bits = self.peek(16);
        for len in LOOKUP_BITS + 1..=16 {
            let code = (bits >> (16 - len)) as i32;
            if code <= h.maxcode[len as usize] {
                let sym = *h.values.get((code + h.valoff[len as usize]) as usize)?;
                self.consume(len + extra(sym));
                return Some(sym);
            }
        }
        None
    }

    /// Real (non-padding) bytes not yet consumed, after dropping the partial byte, plus the
    /// position where the data that follows starts.
    fn leftover(&mut self) -> (usize, usize) {
        let real = self.count.saturating_sub(self.padding);
        ((real / 8) as usize, self.marker.unwrap_or(self.pos))
    }

    /// After a restart interval: the next two bytes must be RSTn.
    fn restart(&mut self, n: u8) -> Result<(), String> {
        if self.overran() {
            return Err("premature end of the entropy-coded data".into());
        }
        let (extra, at) = self.leftover();
        if extra > 0 {
            return Err(format!(
                "{extra} extraneous bytes before restart marker {n}"
            ));
        }
        match (self.data.get(at), self.data.get(at + 1)) {
            (Some(0xFF), Some(&m)) if m == 0xD0 + n => {
                *self = Bits::new(self.data, at + 2);
                Ok(())
            }
            _ => Err(format!("restart marker {n} missing or out of sequence")),
        }
    }
}

#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: u32,
    v: u32,
}

struct Frame {
    width: u32,
    height: u32,
    components: Vec<Component>,
    scanned: Vec<bool>,
}

fn be16(b: &[u8], i: usize) -> Result<usize, String> {
    match (b.get(i), b.get(i + 1)) {
        (Some(&x), Some(&y)) => Ok(u16::from_be_bytes([x, y]) as usize),
        _ => Err("truncated marker segment".into()),
    }
}

fn segment(b: &[u8], i: usize) -> Result<&[u8], String> {
    let len = be16(b, i)?;
    if len < 2 {
        return Err("marker segment length below 2".into());
    }
    b.get(i + 2..i + len)
        .ok_or_else(|| "marker segment runs past the end of the file".into())
}

/// Checks the entropy-coded data of `jpeg` (a whole file). `Ok` for files this check does not
/// cover (progressive, arithmetic coding, height from a DNL marker).
pub fn check(jpeg: &[u8]) -> Result<(), String> {
    let mut dc: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac: [Option<Huffman>; 4] = [None, None, None, None];
    let mut frame: Option<Frame> = None;
    let mut restart = 0u32;
    let mut i = 2;
    loop {
        while jpeg.get(i) == Some(&0xFF) && jpeg.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let (Some(0xFF), Some(&m)) = (jpeg.get(i), jpeg.get(i + 1)) else {
            return Err(format!("expected a marker at byte {i}"));
        };
        i += 2;
        match m {
            0xD9 => break,
            0xD0..=0xD7 | 0x01 => {}
            0xC0 | 0xC1 => {
                let s = segment(jpeg, i)?;
                frame = Some(parse_frame(s)?);
                i += 2 + s.len();
            }
            // Progressive, lossless, hierarchical, arithmetic: the decoder's own checks apply.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(()),
            0xC4 => {
                let s = segment(jpeg, i)?;
                parse_tables(s, &mut dc, &mut ac)?;
                i += 2 + s.len();
            }
            0xDD => {
                let s = segment(jpeg, i)?;
                restart = be16(s, 0)? as u32;
                i += 2 + s.len();
            }
            0xDA => {
                let s = segment(jpeg, i)?;
                let f = frame.as_mut().ok_or("scan before the frame header")?;
                if f.height == 0 {
                    return Ok(()); // the height comes from a DNL marker after the scan
                }
                let end = scan(jpeg, i + 2 + s.len(), s, f, &dc, &ac, restart)?;
                i = end;
            }
            _ => {
                let s = segment(jpeg, i)?;
                i += 2 + s.len();
            }
        }
    }
    match frame {
        Some(f) if f.scanned.iter().all(|&s| s) => Ok(()),
        Some(_) => Err("the file ends before every colour component was coded".into()),
        None => Err("no frame header".into()),
    }
}

fn parse_frame(s: &[u8]) -> Result<Frame, String> {
    let n = *s.get(5).ok_or("truncated frame header")? as usize;
    if n == 0 || s.len() < 6 + 3 * n {
        return Err("malformed frame header".into());
    }
    let components: Vec<Component> = (0..n)
        .map(|c| {
            let b = &s[6 + 3 * c..9 + 3 * c];
            Component {
                id: b[0],
                h: (b[1] >> 4) as u32,
                v: (b[1] & 15) as u32,
            }
        })
        .collect();
    if components
        .iter()
        .any(|c| !(1..=4).contains(&c.h) || !(1..=4).contains(&c.v))
    {
        return Err("invalid sampling factors".into());
    }
    Ok(Frame {
        height: be16(s, 1)? as u32,
        width: be16(s, 3)? as u32,
        scanned: vec![false; n],
        components,
    })
}

fn parse_tables(
    mut s: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Result<(), String> {
    while !s.is_empty() {
        if s.len() < 17 {
            return Err("truncated Huffman table".into());
        }
        let (class, id) = (s[0] >> 4, (s[0] & 15) as usize);
        let counts: [u8; 16] = s[1..17].try_into().map_err(|_| "truncated Huffman table")?;
        let n: usize = counts.iter().map(|&c| c as usize).sum();
        let values = s.get(17..17 + n).ok_or("truncated Huffman table")?.to_vec();
        if id > 3 || class > 1 {
            return Err("invalid Huffman table id".into());
        }
        let table = Some(Huffman::new(
            &counts,
            values,
            if class == 0 { dc_extra } else { ac_extra },
        )?);
        if class == 0 {
            dc[id] = table;
        } else {
            ac[id] = table;
        }
        s = &s[17 + n..];
    }
    Ok(())
}

/// Walks one scan starting at byte `start`; returns where its data ends (at the next marker).
fn scan(
    jpeg: &[u8],
    start: usize,
    header: &[u8],
    frame: &mut Frame,
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart: u32,
) -> Result<usize, String> {
    let ns = *header.first().ok_or("truncated scan header")? as usize;
    if ns == 0 || ns > 4 || header.len() < 1 + 2 * ns {
        return Err("malformed scan header".into());
    }
    let hmax = frame.components.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = frame.components.iter().map(|c| c.v).max().unwrap_or(1);
    // Per scan component: (blocks across in an MCU, down, DC table, AC table).
    let mut comps = Vec::with_capacity(ns);
    for k in 0..ns {
        let (id, t) = (header[1 + 2 * k], header[2 + 2 * k]);
        let ci = frame
            .components
            .iter()
            .position(|c| c.id == id)
            .ok_or("scan names a component the frame lacks")?;
        frame.scanned[ci] = true;
        let c = frame.components[ci];
        let d = dc[(t >> 4) as usize & 3]
            .as_ref()
            .ok_or("missing DC table")?;
        let a = ac[(t & 15) as usize & 3]
            .as_ref()
            .ok_or("missing AC table")?;
        comps.push((c, d, a));
    }
    let div = |a: u32, b: u32| a.div_ceil(b);
    let (mcus, blocks): (u64, Vec<(u32, &Huffman, &Huffman)>) = if ns == 1 {
        let (c, d, a) = comps[0];
        let w = div(div(frame.width * c.h, hmax), 8);
        let h = div(div(frame.height * c.v, vmax), 8);
        (w as u64 * h as u64, vec![(1, d, a)])
    } else {
        let mx = div(frame.width, 8 * hmax);
        let my = div(frame.height, 8 * vmax);
        (
            mx as u64 * my as u64,
            comps.iter().map(|(c, d, a)| (c.h * c.v, *d, *a)).collect(),
        )
    };
    let mut bits = Bits::new(jpeg, start);
    for m in 0..mcus {
        if restart > 0 && m > 0 && m % restart as u64 == 0 {
            bits.restart(((m / restart as u64 - 1) % 8) as u8)?;
        }
        for &(n, d, a) in &blocks {
            for _ in 0..n {
                block(&mut bits, d, a).map_err(|e| format!("{e} (MCU {m} of {mcus})"))?;
            }
        }
        if bits.overran() {
            return Err(format!(
                "premature end of the entropy-coded data (MCU {m} of {mcus})"
            ));
        }
    }
    let (extra, at) = bits.leftover();
    if extra > 0 {
        return Err(format!(
            "{extra} extraneous bytes after the last MCU of a scan"
        ));
    }
    // Past the data's end, only a marker may follow (scan data never holds an unstuffed 0xFF).
    let mut end = at;
    while end < jpeg.len() && jpeg[end] != 0xFF {
        end += 1;
    }
    if end != at {
        return Err(format!(
            "{} extraneous bytes after the last MCU of a scan",
            end - at
        ));
    }
    Ok(end)
}

fn dc_extra(sym: u8) -> u32 {
    sym as u32 & 31
}

fn ac_extra(sym: u8) -> u32 {
    sym as u32 & 15
}

fn block(bits: &mut Bits, dc: &Huffman, ac: &Huffman) -> Result<(), &'static str> {
    let s = bits.symbol::<true>(dc).ok_or("invalid Huffman code")?;
    if s > 15 {
        return Err("invalid DC difference size");
    }
    let mut k = 1u32;
    while k < 64 {
        let rs = bits.symbol::<false>(ac).ok_or("invalid Huffman code")?;
        let (r, s) = ((rs >> 4) as u32, rs & 15);
        if s == 0 {
            if r != 15 {
                return Ok(()); // end of block
            }
            k += 16;
        } else {
            k += r + 1;
        }
    }
    if k > 64 {
        return Err("coefficient run past the end of a block");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    fn jpeg(w: u32, h: u32, gray: bool) -> Vec<u8> {
        let mut s = 7u32;
        let mut out = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
        if gray {
            let img = image::GrayImage::from_fn(w, h, |x, y| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                image::Luma([(x * 5 + y) as u8 ^ (s >> 25) as u8])
            });
            enc.write_image(img.as_raw(), w, h, image::ExtendedColorType::L8)
        } else {
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                image::Rgb([
                    (x * 3) as u8 ^ (s >> 24) as u8,
                    (y * 7) as u8,
                    (s >> 16) as u8,
                ])
            });
            enc.write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        }
        .unwrap();
        out
    }

    #[test]
    fn valid_files_pass() {
        for (w, h) in [(1, 1), (8, 8), (17, 9), (64, 48), (333, 201)] {
            check(&jpeg(w, h, false)).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
            check(&jpeg(w, h, true)).unwrap_or_else(|e| panic!("{w}x{h} gray: {e}"));
        }
    }

    #[test]
    fn damage_is_found() {
        let good = jpeg(200, 150, false);
        // Truncated inside the scan, with an EOI glued on.
        let mut cut = good[..good.len() * 2 / 3].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        assert!(
            check(&cut).unwrap_err().contains("premature"),
            "{:?}",
            check(&cut)
        );
        // Extra bytes before the EOI.
        let mut long = good[..good.len() - 2].to_vec();
        long.extend_from_slice(&[1, 2, 3, 0xFF, 0xD9]);
        assert!(check(&long).unwrap_err().contains("extraneous"));
    }
}

#[cfg(test)]
mod fixture_tests {
    /// Every JPEG among the repository's fixtures (synth's encoder, with its own tables and
    /// 4:2:0 sampling) passes.
    #[test]
    fn fixture_photos_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut n = 0;
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "jpg") {
                    let bytes = std::fs::read(&p).unwrap();
                    super::check(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    n += 1;
                }
            }
        }
        assert!(n >= 6, "only {n} fixture JPEGs");
    }
}
