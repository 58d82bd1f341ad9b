//! Checks a rendered MP4 in-process, without starting a process: walks the file's top-level
//! ISO BMFF boxes, reads the movie header (`mvhd`) for the duration and the track handlers for
//! the kinds of stream, and requires media data. That is what the agent needs before it records
//! an output (ffprobe's `format=duration` reads the same header), at a fraction of a millisecond
//! where starting ffprobe costs about 150 ms on this machine: a tenth of a short job's wall time.
//!
//! The file comes from an engine, a proprietary one included, so nothing in it is trusted: every
//! size is checked against what is left, arithmetic is checked, the movie box is read whole only
//! up to [`MAX_MOOV_BYTES`], and the walk stops after [`MAX_BOXES`] boxes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The largest movie box read into memory (a 600 s 60 fps render's index is well under 1 MiB).
pub const MAX_MOOV_BYTES: u64 = 64 << 20;
/// The most boxes walked at one level.
pub const MAX_BOXES: usize = 4096;

/// What the headers of an MP4 say.
#[derive(Clone, Debug, PartialEq)]
pub struct Mp4Summary {
    /// Seconds, from the movie header.
    pub duration: f64,
    pub video_tracks: u32,
    pub audio_tracks: u32,
    /// Bytes of media data (`mdat` payloads).
    pub media_bytes: u64,
}

/// Why a file is not a playable MP4.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an MP4: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> Mp4Error {
    Mp4Error::Invalid(msg.into())
}

/// Reads `path`'s headers; an error says what is wrong.
pub fn summary(path: &Path) -> Result<Mp4Summary, Mp4Error> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    let (mut ftyp, mut moov, mut media_bytes, mut boxes) = (false, None, 0u64, 0usize);
    while pos < len {
        boxes += 1;
        if boxes > MAX_BOXES {
            return Err(invalid(format!("more than {MAX_BOXES} top-level boxes")));
        }
        file.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        let avail = (len - pos).min(16) as usize;
        file.read_exact(&mut head[..avail])?;
        let (kind, header, size) = box_header(&head[..avail], len - pos)?;
        match &kind {
            b"ftyp" => ftyp = true,
            b"moov" => {
                if moov.is_some() {
                    return Err(invalid("two moov boxes"));
                }
                let body = size - header;
                if body > MAX_MOOV_BYTES {
                    return Err(invalid(format!("a moov box of {body} bytes")));
                }
                let mut buf = vec![0u8; body as usize];
                file.seek(SeekFrom::Start(pos + header))?;
                file.read_exact(&mut buf)?;
                moov = Some(buf);
            }
            b"mdat" => media_bytes += size - header,
            _ => {}
        }
        pos += size;
    }
    if !ftyp {
        return Err(invalid("no ftyp box"));
    }
    let moov = moov.ok_or_else(|| invalid("no moov box"))?;
    let mut out = read_moov(&moov)?;
    if media_bytes == 0 {
        return Err(invalid("no media data"));
    }
    out.media_bytes = media_bytes;
    Ok(out)
}

/// Parses a box header at the start of `buf`, where `left` bytes remain in the enclosing space:
/// (type, header length, box length). Size 0 means "to the end"; size 1, a 64-bit size follows.
fn box_header(buf: &[u8], left: u64) -> Result<([u8; 4], u64, u64), Mp4Error> {
    if buf.len() < 8 {
        return Err(invalid(format!(
            "{} stray bytes at the end of a box",
            buf.len()
        )));
    }
    let kind: [u8; 4] = buf[4..8].try_into().expect("4 bytes");
    let (header, size) = match u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) {
        0 => (8, left),
        1 => {
            let large = buf
                .get(8..16)
                .ok_or_else(|| invalid(format!("box {} is cut short", name(&kind))))?;
            (16, u64::from_be_bytes(large.try_into().expect("8 bytes")))
        }
        n => (8, u64::from(n)),
    };
    if size < header {
        return Err(invalid(format!(
            "box {} claims {size} bytes, less than its header",
            name(&kind)
        )));
    }
    if size > left {
        return Err(invalid(format!(
            "box {} runs {} bytes past its end (a truncated file?)",
            name(&kind),
            size - left
        )));
    }
    Ok((kind, header, size))
}

fn name(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// A box read from memory: its type and its body.
type Child<'a> = ([u8; 4], &'a [u8]);

/// The child boxes of a box body held in memory.
fn children(mut buf: &[u8]) -> Result<Vec<Child<'_>>, Mp4Error> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if out.len() >= MAX_BOXES {
            return Err(invalid(format!("more than {MAX_BOXES} boxes in one box")));
        }
        let (kind, header, size) = box_header(&buf[..buf.len().min(16)], buf.len() as u64)?;
        // Both are at most buf.len(), checked by box_header.
        out.push((kind, &buf[header as usize..size as usize]));
        buf = &buf[size as usize..];
    }
    Ok(out)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read_moov(moov: &[u8]) -> Result<Mp4Summary, Mp4Error> {
    let mut duration = None;
    let (mut video_tracks, mut audio_tracks) = (0, 0);
    for (kind, body) in children(moov)? {
        match &kind {
            b"mvhd" => duration = Some(movie_duration(body)?),
            b"trak" => match track_handler(body)? {
                Some(h) if &h == b"vide" => video_tracks += 1,
                Some(h) if &h == b"soun" => audio_tracks += 1,
                _ => {}
            },
            _ => {}
        }
    }
    let duration = duration.ok_or_else(|| invalid("no movie header (mvhd)"))?;
    if video_tracks == 0 {
        return Err(invalid("no video track"));
    }
    Ok(Mp4Summary {
        duration,
        video_tracks,
        audio_tracks,
        media_bytes: 0,
    })
}

/// Seconds from an `mvhd` body: version 0 has 32-bit times, version 1 64-bit ones.
fn movie_duration(b: &[u8]) -> Result<f64, Mp4Error> {
    let short = || invalid("the movie header is cut short");
    let (timescale, units) = match b.first() {
        Some(0) => (
            be_u32(b, 12).ok_or_else(short)?,
            u64::from(be_u32(b, 16).ok_or_else(short)?),
        ),
        Some(1) => (
            be_u32(b, 20).ok_or_else(short)?,
            be_u64(b, 24).ok_or_else(short)?,
        ),
        Some(v) => return Err(invalid(format!("movie header version {v}"))),
        None => return Err(short()),
    };
    if timescale == 0 {
        return Err(invalid("the movie header's timescale is 0"));
    }
    // All ones means "unknown" in both versions.
    if units == 0 || units == u64::from(u32::MAX) || units == u64::MAX {
        return Err(invalid("the movie has no duration"));
    }
    Ok(units as f64 / f64::from(timescale))
}

/// The handler type (`vide`, `soun`, ...) of a `trak` body, from `mdia/hdlr`.
fn track_handler(trak: &[u8]) -> Result<Option<[u8; 4]>, Mp4Error> {
    for (kind, mdia) in children(trak)? {
        if &kind != b"mdia" {
            continue;
        }
        for (kind, hdlr) in children(mdia)? {
            // Version and flags (4), pre_defined (4), then the handler type.
            if &kind == b"hdlr" {
                let h = hdlr
                    .get(8..12)
                    .ok_or_else(|| invalid("a track's handler box is cut short"))?;
                return Ok(Some(h.try_into().expect("4 bytes")));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut b = vec![0u8; 100];
        b[12..16].copy_from_slice(&timescale.to_be_bytes());
        b[16..20].copy_from_slice(&duration.to_be_bytes());
        bx(b"mvhd", &b)
    }

    fn mvhd_v1(timescale: u32, duration: u64) -> Vec<u8> {
        let mut b = vec![0u8; 112];
        b[0] = 1;
        b[20..24].copy_from_slice(&timescale.to_be_bytes());
        b[24..32].copy_from_slice(&duration.to_be_bytes());
        bx(b"mvhd", &b)
    }

    fn trak(handler: &[u8; 4]) -> Vec<u8> {
        let mut h = vec![0u8; 24];
        h[8..12].copy_from_slice(handler);
        bx(
            b"trak",
            &bx(b"mdia", &[bx(b"mdhd", &[0; 24]), bx(b"hdlr", &h)].concat()),
        )
    }

    fn file(parts: &[Vec<u8>]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), parts.concat()).unwrap();
        f
    }

    fn moov(parts: &[Vec<u8>]) -> Vec<u8> {
        bx(b"moov", &parts.concat())
    }

    fn ftyp() -> Vec<u8> {
        bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41")
    }

    fn err(parts: &[Vec<u8>]) -> String {
        summary(file(parts).path()).unwrap_err().to_string()
    }

    #[test]
    fn a_faststart_file_reads_duration_tracks_and_media_bytes() {
        let f = file(&[
            ftyp(),
            moov(&[mvhd_v0(1000, 10_033), trak(b"vide"), trak(b"soun")]),
            bx(b"free", &[]),
            bx(b"mdat", &[7; 300]),
        ]);
        let s = summary(f.path()).unwrap();
        assert_eq!(
            s,
            Mp4Summary {
                duration: 10.033,
                video_tracks: 1,
                audio_tracks: 1,
                media_bytes: 300,
            }
        );
    }

    #[test]
    fn moov_after_mdat_a_64_bit_size_and_a_version_1_header_read() {
        let mut mdat = 1u32.to_be_bytes().to_vec();
        mdat.extend_from_slice(b"mdat");
        mdat.extend_from_slice(&(16u64 + 5).to_be_bytes());
        mdat.extend_from_slice(&[1; 5]);
        let f = file(&[
            ftyp(),
            mdat,
            moov(&[mvhd_v1(90_000, 270_000), trak(b"vide")]),
        ]);
        let s = summary(f.path()).unwrap();
        assert_eq!((s.duration, s.video_tracks, s.media_bytes), (3.0, 1, 5));
    }

    #[test]
    fn a_last_box_of_size_zero_runs_to_the_end() {
        let mut mdat = 0u32.to_be_bytes().to_vec();
        mdat.extend_from_slice(b"mdat");
        mdat.extend_from_slice(&[1; 9]);
        let f = file(&[ftyp(), moov(&[mvhd_v0(600, 300), trak(b"vide")]), mdat]);
        assert_eq!(summary(f.path()).unwrap().media_bytes, 9);
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        let good_moov = moov(&[mvhd_v0(1000, 1000), trak(b"vide")]);
        let mdat = bx(b"mdat", &[1; 4]);
        assert_eq!(
            err(&[good_moov.clone(), mdat.clone()]),
            "not an MP4: no ftyp box"
        );
        assert_eq!(err(&[ftyp(), mdat.clone()]), "not an MP4: no moov box");
        assert_eq!(
            err(&[ftyp(), good_moov.clone()]),
            "not an MP4: no media data"
        );
        assert_eq!(
            err(&[ftyp(), moov(&[trak(b"vide")]), mdat.clone()]),
            "not an MP4: no movie header (mvhd)"
        );
        assert_eq!(
            err(&[
                ftyp(),
                moov(&[mvhd_v0(1000, 1000), trak(b"soun")]),
                mdat.clone()
            ]),
            "not an MP4: no video track"
        );
        assert_eq!(
            err(&[
                ftyp(),
                moov(&[mvhd_v0(0, 1000), trak(b"vide")]),
                mdat.clone()
            ]),
            "not an MP4: the movie header's timescale is 0"
        );
        assert_eq!(
            err(&[
                ftyp(),
                moov(&[mvhd_v0(1000, 0), trak(b"vide")]),
                mdat.clone()
            ]),
            "not an MP4: the movie has no duration"
        );
        let mut cut = [ftyp(), good_moov.clone(), mdat.clone()].concat();
        cut.truncate(cut.len() - 2);
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), &cut).unwrap();
        assert_eq!(
            summary(f.path()).unwrap_err().to_string(),
            "not an MP4: box mdat runs 2 bytes past its end (a truncated file?)"
        );
        assert_eq!(
            err(&[ftyp(), vec![0, 0, 0, 3, b'b', b'a', b'd', 0]]),
            "not an MP4: box bad? claims 3 bytes, less than its header"
        );
        assert_eq!(
            err(&[ftyp(), good_moov.clone(), mdat.clone(), vec![0, 0, 0]]),
            "not an MP4: 3 stray bytes at the end of a box"
        );
        assert_eq!(err(&[]), "not an MP4: no ftyp box");
        assert!(
            summary(Path::new("/nonexistent/output.mp4"))
                .unwrap_err()
                .to_string()
                .starts_with("cannot read the file:")
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: mutate a valid file byte by byte and truncate it everywhere.
        let valid = [
            ftyp(),
            moov(&[mvhd_v0(1000, 2000), trak(b"vide"), trak(b"soun")]),
            bx(b"mdat", &[5; 16]),
        ]
        .concat();
        let f = tempfile::NamedTempFile::new().unwrap();
        for at in 0..valid.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = valid.clone();
                b[at] = v;
                std::fs::write(f.path(), &b).unwrap();
                let _ = summary(f.path());
            }
            std::fs::write(f.path(), &valid[..at]).unwrap();
            assert!(
                summary(f.path()).is_err(),
                "a file cut at {at} bytes passed"
            );
        }
    }
}
