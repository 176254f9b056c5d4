//! Captures in and out: pcap and pcapng frames read one at a time (memory stays flat whatever
//! the capture's size), and the rewritten frames written as pcapng with each verdict as the
//! packet's comment.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};

/// One frame of a capture, borrowed from the reader until the next one is read.
pub struct Frame<'a> {
    /// The frame's bytes, from the Ethernet header on.
    pub data: &'a [u8],
    /// When it was captured (since the Unix epoch).
    pub timestamp: Duration,
}

/// A pcap or pcapng file with an Ethernet link type, read frame by frame.
pub struct Capture {
    path: PathBuf,
    reader: Reader,
    /// The current frame (the readers lend theirs only until the next call).
    frame: Vec<u8>,
    /// Frames read so far.
    n_frames: usize,
}

enum Reader {
    Pcap(PcapReader<File>),
    PcapNg(PcapNgReader<File>),
}

impl Capture {
    /// Opens `path` and reads its header (pcap: also checks the link type).
    pub fn open(path: &Path) -> Result<Capture> {
        let cannot_read = || format!("cannot read {}", path.display());
        let mut file = File::open(path).with_context(cannot_read)?;
        let bad = |what: String| anyhow::anyhow!("{}: {what}", path.display());
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).with_context(cannot_read)?;
        file.seek(SeekFrom::Start(0)).with_context(cannot_read)?;
        let reader = if n == 4 && magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            Reader::PcapNg(PcapNgReader::new(file).map_err(|e| bad(format!("not a valid pcapng file ({e})")))?)
        } else {
            let reader = PcapReader::new(file).map_err(|e| bad(format!("not a pcap or pcapng file ({e})")))?;
            let link = reader.header().datalink;
            if link != DataLink::ETHERNET {
                bail!(bad(format!("link type {link:?}; duet needs Ethernet captures")));
            }
            Reader::Pcap(reader)
        };
        Ok(Capture { path: path.to_owned(), reader, frame: Vec::new(), n_frames: 0 })
    }

    /// The next frame, `None` at the end of the capture, or why the capture cannot be read on.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>>> {
        let n = self.n_frames;
        let path = &self.path;
        let bad = |what: String| anyhow::anyhow!("{}: {what}", path.display());
        let timestamp = match &mut self.reader {
            Reader::Pcap(reader) => match reader.next_packet()? {
                Ok(p) => {
                    self.frame.clear();
                    self.frame.extend_from_slice(&p.data);
                    p.timestamp
                }
                Err(e) => return Some(Err(bad(format!("corrupt or truncated packet record after {n} frames ({e})")))),
            },
            Reader::PcapNg(reader) => loop {
                let block = match reader.next_block()? {
                    Ok(block) => block,
                    Err(e) => {
                        return Some(Err(bad(format!("corrupt or truncated pcapng block after {n} frames ({e})"))));
                    }
                };
                let (timestamp, iface) = match &block {
                    Block::EnhancedPacket(p) => (p.timestamp, Some(p.interface_id)),
                    Block::SimplePacket(_) => (Duration::ZERO, None),
                    _ => continue,
                };
                if let Block::EnhancedPacket(p) = &block {
                    self.frame.clear();
                    self.frame.extend_from_slice(&p.data);
                } else if let Block::SimplePacket(p) = &block {
                    self.frame.clear();
                    self.frame.extend_from_slice(&p.data);
                }
                drop(block);
                let link = iface
                    .and_then(|i| reader.interfaces().get(i as usize))
                    .or_else(|| reader.interfaces().first())
                    .map(|i| i.linktype);
                if link != Some(DataLink::ETHERNET) {
                    return Some(Err(bad(format!("frame {n} has link type {link:?}; duet needs Ethernet captures"))));
                }
                break timestamp;
            },
        };
        self.n_frames += 1;
        Some(Ok(Frame { data: &self.frame, timestamp }))
    }
}

/// Every frame of a capture, for the commands that hand all of them to the kernel at once.
pub fn read_all(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut capture = Capture::open(path)?;
    let mut frames = Vec::new();
    while let Some(frame) = capture.next_frame() {
        frames.push(frame?.data.to_vec());
    }
    Ok(frames)
}

/// Writes frames as pcapng (Ethernet), each with a comment (the verdict), as they come.
pub struct CaptureWriter {
    path: PathBuf,
    writer: PcapNgWriter<BufWriter<File>>,
}

impl CaptureWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<CaptureWriter> {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer =
            PcapNgWriter::new(BufWriter::new(file)).with_context(|| format!("cannot write {}", path.display()))?;
        let interface = InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen: 0, options: vec![] };
        writer.write_pcapng_block(interface).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(CaptureWriter { path: path.to_owned(), writer })
    }

    /// Appends one frame.
    pub fn write(&mut self, data: &[u8], timestamp: Duration, comment: &str) -> Result<()> {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp,
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![EnhancedPacketOption::Comment(Cow::Borrowed(comment))],
        };
        self.writer.write_pcapng_block(block).with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }

    /// Flushes the file.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        self.writer
            .into_inner()
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
