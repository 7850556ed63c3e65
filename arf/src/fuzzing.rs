//! Helpers for the fuzz target (feature `fuzzing`): not part of the stable API.

use crate::format::{
    BLOCK_HEADER_LEN, BLOCK_TAG, FILE_MAGIC, FILE_PREFIX_LEN, FOOTER_LEN, FOOTER_MAGIC,
    TRAILER_HEADER_LEN, TRAILER_TAG, VERSION, crc,
};

fn u32_at(buf: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Makes the magic, version, tags and checksums of arbitrary bytes valid wherever its lengths
/// lead, so that a fuzzer reaches the record and index parsers instead of stopping at a CRC.
pub fn fix_checksums(file: &mut [u8]) {
    if file.len() < FILE_PREFIX_LEN {
        return;
    }
    put(file, 0, &FILE_MAGIC);
    put(file, 8, &VERSION.to_le_bytes());
    let Some(header_end) = u32_at(file, 10).and_then(|n| n.checked_add(FILE_PREFIX_LEN)) else {
        return;
    };
    if header_end.saturating_add(4) > file.len() {
        return;
    }
    let sum = crc(&file[..header_end]);
    put(file, header_end, &sum.to_le_bytes());
    let mut pos = header_end + 4;
    loop {
        let left = file.len() - pos;
        if left >= 4 && file[pos..pos + 4] == TRAILER_TAG {
            let Some(len) = u32_at(file, pos + 4) else {
                return;
            };
            let body = pos + TRAILER_HEADER_LEN;
            if body.saturating_add(len) <= file.len() {
                let sum = crc(&file[body..body + len]);
                put(file, pos + 8, &sum.to_le_bytes());
            }
            if file.len() >= body.saturating_add(len).saturating_add(FOOTER_LEN) {
                let at = file.len() - FOOTER_LEN;
                let offset = (pos as u64).to_le_bytes();
                put(file, at, &offset);
                put(file, at + 8, &crc(&offset).to_le_bytes());
                put(file, at + 12, &FOOTER_MAGIC);
            }
            return;
        }
        if left < BLOCK_HEADER_LEN {
            return;
        }
        put(file, pos, &BLOCK_TAG);
        let Some(len) = u32_at(file, pos + 4) else {
            return;
        };
        let end = (pos + BLOCK_HEADER_LEN).saturating_add(len);
        if end <= file.len() {
            let sum = crc(&file[pos + BLOCK_HEADER_LEN..end]);
            put(file, pos + 28, &sum.to_le_bytes());
        }
        let sum = crc(&file[pos..pos + 32]);
        put(file, pos + 32, &sum.to_le_bytes());
        if end > file.len() {
            return;
        }
        pos = end;
    }
}
