//! Reads an SQLite write-ahead log (`FILE-wal`) the way SQLite's own
//! recovery will, before SQLite opens it, so that `phs serve` can say what a
//! crash left there: SQLite replays the frames up to the last valid commit
//! and silently ignores the rest, and the operator should hear about the rest.
//!
//! The format (sqlite.org/fileformat.html, "WAL file format"): a 32-byte
//! header (magic, version, page size, checkpoint sequence, two salts, a
//! checksum), then frames of a 24-byte header (page number, the database
//! size after a commit or 0, the salts, a cumulative checksum) and one page.
//! A frame is valid when its salts are the header's and the checksum, which
//! runs over the header and every frame before it, matches; frames of an
//! older generation (before the log was last reset) carry other salts.

use std::path::Path;

/// What SQLite will make of a WAL file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalScan {
    /// Frames up to and including the last valid commit: replayed.
    pub committed_frames: u64,
    /// Transactions those frames commit.
    pub commits: u64,
    /// Valid frames after the last commit: a transaction that never
    /// committed (its caller never heard "done"), dropped.
    pub uncommitted_frames: u64,
    /// Frames of this generation from the first invalid one on (a torn or
    /// damaged frame, and those after it, which can no longer be checked): dropped.
    pub damaged_frames: u64,
    /// Bytes past the last whole frame (a frame cut short): dropped.
    pub partial_bytes: u64,
    /// The header itself is invalid (SQLite then ignores the whole log).
    pub bad_header: bool,
}

impl WalScan {
    /// Whether SQLite will drop anything a crash left in the log.
    pub fn drops_anything(&self) -> bool {
        self.uncommitted_frames > 0 || self.damaged_frames > 0 || self.partial_bytes > 0 || self.bad_header
    }
}

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// Scans `path`; None when there is no log (or nothing in it).
pub fn scan(path: &Path) -> std::io::Result<Option<WalScan>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok((!bytes.is_empty()).then(|| scan_bytes(&bytes)))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing `s`.
/// The words are read in the byte order the magic number names.
fn checksum(data: &[u8], little_endian: bool, mut s: (u32, u32)) -> (u32, u32) {
    for chunk in data.chunks_exact(8) {
        let word = |w: &[u8]| {
            let w = [w[0], w[1], w[2], w[3]];
            if little_endian { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }
        };
        s.0 = s.0.wrapping_add(word(&chunk[..4])).wrapping_add(s.1);
        s.1 = s.1.wrapping_add(word(&chunk[4..])).wrapping_add(s.0);
    }
    s
}

pub fn scan_bytes(b: &[u8]) -> WalScan {
    let mut out = WalScan::default();
    if b.len() < HEADER {
        out.bad_header = true;
        out.partial_bytes = b.len() as u64;
        return out;
    }
    let little_endian = match be32(b, 0) {
        0x377f_0682 => true,
        0x377f_0683 => false,
        _ => {
            out.bad_header = true;
            return out;
        }
    };
    let page_size = be32(b, 8) as usize;
    let mut sum = checksum(&b[..24], little_endian, (0, 0));
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() || sum != (be32(b, 24), be32(b, 28)) {
        out.bad_header = true;
        return out;
    }
    let salts = (be32(b, 16), be32(b, 20));
    let frame_len = FRAME_HEADER + page_size;
    let frames = (b.len() - HEADER) / frame_len;
    out.partial_bytes = ((b.len() - HEADER) % frame_len) as u64;
    let mut valid = 0u64;
    for i in 0..frames {
        let f = &b[HEADER + i * frame_len..HEADER + (i + 1) * frame_len];
        if (be32(f, 8), be32(f, 12)) != salts {
            // An older generation from here on: not part of this log, nothing lost.
            break;
        }
        let next = checksum(&f[FRAME_HEADER..], little_endian, checksum(&f[..8], little_endian, sum));
        if next != (be32(f, 16), be32(f, 20)) {
            // Every later frame of this generation chains from this one, so none can be checked.
            out.damaged_frames = (i..frames)
                .filter(|j| {
                    let g = &b[HEADER + j * frame_len..];
                    (be32(g, 8), be32(g, 12)) == salts
                })
                .count() as u64;
            break;
        }
        sum = next;
        valid += 1;
        if be32(f, 4) != 0 {
            out.commits += 1;
            out.committed_frames = valid;
        }
    }
    out.uncommitted_frames = valid - out.committed_frames;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL of `frames` (page number, commit size) with 512-byte pages, as SQLite writes one.
    fn wal(frames: &[(u32, u32)]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [0x377f_0682u32, 3_007_000, 512, 0, 0xdead_beef, 0x1234_5678] {
            b.extend(w.to_be_bytes());
        }
        let mut sum = checksum(&b, true, (0, 0));
        b.extend(sum.0.to_be_bytes());
        b.extend(sum.1.to_be_bytes());
        for (i, (page, commit)) in frames.iter().enumerate() {
            let data = vec![i as u8; 512];
            let mut head = Vec::new();
            for w in [*page, *commit, 0xdead_beef, 0x1234_5678] {
                head.extend(w.to_be_bytes());
            }
            sum = checksum(&data, true, checksum(&head[..8], true, sum));
            b.extend(&head);
            b.extend(sum.0.to_be_bytes());
            b.extend(sum.1.to_be_bytes());
            b.extend(&data);
        }
        b
    }

    #[test]
    fn committed_uncommitted_torn_and_cut_frames_are_told_apart() {
        let full = wal(&[(1, 0), (2, 2), (3, 0), (4, 4), (5, 0)]);
        let s = scan_bytes(&full);
        assert_eq!((s.committed_frames, s.commits, s.uncommitted_frames, s.damaged_frames), (4, 2, 1, 0));
        assert!(s.drops_anything());

        let frame = FRAME_HEADER + 512;
        let cut = &full[..HEADER + 3 * frame + 100];
        let s = scan_bytes(cut);
        assert_eq!((s.committed_frames, s.uncommitted_frames, s.partial_bytes), (2, 1, 100));

        let mut damaged = full.clone();
        damaged[HEADER + frame + FRAME_HEADER + 7] ^= 0xff;
        let s = scan_bytes(&damaged);
        assert_eq!((s.committed_frames, s.commits, s.damaged_frames), (0, 0, 4), "frame 2 and all after it");

        let clean = wal(&[(1, 0), (2, 2)]);
        assert!(!scan_bytes(&clean).drops_anything());
        assert!(scan_bytes(&clean[..20]).bad_header);
    }
}
