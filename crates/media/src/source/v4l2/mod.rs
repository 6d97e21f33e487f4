//! USB cameras through Video4Linux2, with raw ioctls.
//!
//! Talking to the kernel directly (see `sys`) needs only `libc`: no libv4l, no bindgen, no libclang,
//! so the feature builds anywhere Linux does, including a Raspberry Pi. Capture uses the standard
//! streaming-I/O loop: a few kernel buffers are memory-mapped, queued, and each filled one is
//! dequeued, used, and queued again.
//!
//! When the camera offers MJPEG, its frames are passed on as they are (with standard Huffman
//! tables added where the camera leaves them out): no decode, no encode, and the camera's own
//! encoder does the work. Otherwise YUYV frames are converted and encoded (see [`crate::yuv`]).

#![allow(unsafe_code)] // mmap/munmap and ioctl, each with its SAFETY note

mod sys;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::{FrameSource, SourceError, SourceFrame, DEFAULT_CAPTURE_SIZE, DEFAULT_QUALITY};
use crate::jpeg;
use crate::yuv::{self, YuvRange};
use sys::Zeroed;

/// How to open a camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4l2Config {
    /// Requested width; the driver picks the nearest size it supports.
    pub width: u32,
    /// Requested height.
    pub height: u32,
    /// Requested frame rate; 0, or a driver that cannot set it, keeps the driver's own.
    pub fps: u32,
    /// JPEG quality when the camera only offers YUYV.
    pub quality: u8,
    /// Kernel buffers to cycle through (2..=32): more absorbs jitter, fewer means less latency.
    pub buffers: u32,
    /// How long to wait for a frame before [`SourceError::Timeout`].
    pub timeout: Duration,
}

impl Default for V4l2Config {
    fn default() -> Self {
        V4l2Config {
            width: DEFAULT_CAPTURE_SIZE.0,
            height: DEFAULT_CAPTURE_SIZE.1,
            fps: 30,
            quality: DEFAULT_QUALITY,
            buffers: 4,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What the camera delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Complete JPEGs, passed through.
    Jpeg,
    /// YUYV 4:2:2, converted and encoded.
    Yuyv { stride: usize, range: YuvRange },
}

/// One kernel buffer mapped into this process.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn bytes(&self, used: usize) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes, and the kernel does not write
        // to a buffer between dequeue and the next queue, which is when this is called.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), used.min(self.len)) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and are unmapped once, here.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// A V4L2 capture device streaming JPEG frames.
pub struct V4l2Source {
    device: PathBuf,
    // Field order matters for drop: mappings are unmapped before the device is closed.
    mappings: Vec<Mapping>,
    file: File,
    card: String,
    width: u32,
    height: u32,
    delivery: Delivery,
    quality: u8,
    timeout: Duration,
    scratch: Vec<u8>,
}

// SAFETY: the raw pointers in `mappings` are private mappings owned by this value alone; nothing
// about them is tied to the thread that created them.
unsafe impl Send for V4l2Source {}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("device", &self.device)
            .field("card", &self.card)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("pixel_format", &self.pixel_format())
            .finish_non_exhaustive()
    }
}

impl V4l2Source {
    /// Opens `device` (e.g. `/dev/video0`), picks MJPEG if offered else YUYV, sets the size and
    /// rate, and starts streaming.
    ///
    /// # Errors
    /// [`SourceError::Io`] if the device cannot be opened or an ioctl fails,
    /// [`SourceError::Device`] if it is not a streaming capture device or offers neither MJPEG
    /// nor YUYV.
    pub fn open(device: impl AsRef<Path>, config: &V4l2Config) -> Result<V4l2Source, SourceError> {
        let device = device.as_ref().to_path_buf();
        let fail = |message: String| SourceError::Device {
            device: device.clone(),
            message,
        };
        let io = |what: &str, e: std::io::Error| {
            SourceError::io(format!("{}: {what}", device.display()), e)
        };
        if !(2..=32).contains(&config.buffers) {
            return Err(fail(format!(
                "buffer count {} is not in 2..=32",
                config.buffers
            )));
        }
        if !(1..=100).contains(&config.quality) {
            return Err(jpeg::JpegError::InvalidQuality(config.quality).into());
        }

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&device)
            .map_err(|e| io("opening", e))?;
        let fd = file.as_raw_fd();

        let mut cap = sys::Capability::zeroed();
        sys::ioctl(fd, &sys::VIDIOC_QUERYCAP, &mut cap).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTTY) {
                fail("not a V4L2 device".into())
            } else {
                io("querying capabilities", e)
            }
        })?;
        let caps = if cap.capabilities & sys::CAP_DEVICE_CAPS != 0 {
            cap.device_caps
        } else {
            cap.capabilities
        };
        let card = c_string(&cap.card);
        if caps & sys::CAP_VIDEO_CAPTURE == 0 || caps & sys::CAP_STREAMING == 0 {
            return Err(fail(format!(
                "{card} is not a streaming video capture device (a camera's second node is often \
                 metadata only: try the next /dev/videoN)"
            )));
        }

        let offered = pixel_formats(fd).map_err(|e| io("listing pixel formats", e))?;
        let wanted = [sys::PIX_FMT_MJPEG, sys::PIX_FMT_JPEG, sys::PIX_FMT_YUYV]
            .into_iter()
            .find(|f| offered.contains(f))
            .ok_or_else(|| {
                let names: Vec<String> = offered.iter().map(|&f| fourcc_name(f)).collect();
                fail(format!(
                    "{card} offers neither MJPEG nor YUYV (it offers: {})",
                    names.join(", ")
                ))
            })?;

        let mut format = sys::Format::zeroed();
        format.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY (union access): `pix` is the member for video capture, and all-zero is valid.
        let pix = unsafe { &mut format.fmt.pix };
        pix.width = config.width;
        pix.height = config.height;
        pix.pixelformat = wanted;
        pix.field = sys::FIELD_ANY;
        sys::ioctl(fd, &sys::VIDIOC_S_FMT, &mut format).map_err(|e| io("setting the format", e))?;
        // SAFETY (union access): the driver filled in `pix` for a capture format.
        let pix = unsafe { format.fmt.pix };
        if pix.pixelformat != wanted {
            return Err(fail(format!(
                "asked for {}, driver chose {}",
                fourcc_name(wanted),
                fourcc_name(pix.pixelformat)
            )));
        }
        let delivery = if wanted == sys::PIX_FMT_YUYV {
            Delivery::Yuyv {
                stride: (pix.bytesperline as usize).max(pix.width as usize * 2),
                range: if pix.quantization == sys::QUANTIZATION_FULL_RANGE {
                    YuvRange::Full
                } else {
                    YuvRange::Limited
                },
            }
        } else {
            Delivery::Jpeg
        };

        if config.fps > 0 {
            let mut parm = sys::StreamParm::zeroed();
            parm.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
            parm.parm.capture.timeperframe = sys::Fract {
                numerator: 1,
                denominator: config.fps,
            };
            // Many drivers fix the rate; that is not worth failing over.
            let _ = sys::ioctl(fd, &sys::VIDIOC_S_PARM, &mut parm);
        }

        let mappings = map_buffers(fd, config.buffers).map_err(|e| io("mapping buffers", e))?;
        if mappings.len() < 2 {
            return Err(fail(format!(
                "driver granted only {} buffer(s)",
                mappings.len()
            )));
        }
        let source = V4l2Source {
            device: device.clone(),
            mappings,
            file,
            card,
            width: pix.width,
            height: pix.height,
            delivery,
            quality: config.quality,
            timeout: config.timeout,
            scratch: Vec::new(),
        };
        for index in 0..source.mappings.len() as u32 {
            source.queue(index).map_err(|e| io("queueing buffers", e))?;
        }
        let mut kind = sys::BUF_TYPE_VIDEO_CAPTURE as libc::c_int;
        sys::ioctl(fd, &sys::VIDIOC_STREAMON, &mut kind)
            .map_err(|e| io("starting the stream", e))?;
        Ok(source)
    }

    /// The camera's name as the driver reports it.
    pub fn card(&self) -> &str {
        &self.card
    }

    /// The width the driver chose.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The height the driver chose.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `"MJPEG"` when frames pass through, `"YUYV"` when they are encoded here.
    pub fn pixel_format(&self) -> &'static str {
        match self.delivery {
            Delivery::Jpeg => "MJPEG",
            Delivery::Yuyv { .. } => "YUYV",
        }
    }

    fn queue(&self, index: u32) -> std::io::Result<()> {
        let mut buf = sys::Buffer::zeroed();
        buf.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = sys::MEMORY_MMAP;
        buf.index = index;
        sys::ioctl(self.file.as_raw_fd(), &sys::VIDIOC_QBUF, &mut buf)
    }

    /// Waits for and dequeues a filled buffer.
    fn dequeue(&self) -> Result<sys::Buffer, SourceError> {
        let fd = self.file.as_raw_fd();
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms =
            libc::c_int::try_from(self.timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        loop {
            // SAFETY: one valid pollfd, count 1.
            let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
            match ready {
                0 => {
                    return Err(SourceError::Timeout {
                        device: self.device.clone(),
                        after: self.timeout,
                    })
                }
                n if n > 0 => break,
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(SourceError::io(
                            format!("{}: waiting for a frame", self.device.display()),
                            e,
                        ));
                    }
                }
            }
        }
        let mut buf = sys::Buffer::zeroed();
        buf.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = sys::MEMORY_MMAP;
        sys::ioctl(fd, &sys::VIDIOC_DQBUF, &mut buf).map_err(|e| {
            SourceError::io(format!("{}: dequeueing a frame", self.device.display()), e)
        })?;
        Ok(buf)
    }
}

/// A dequeued frame, out of the kernel buffer.
enum Taken {
    /// A copy of the camera's JPEG.
    Jpeg(Bytes),
    /// Full-range YCbCr pixels, in `scratch`.
    Ycbcr,
}

impl V4l2Source {
    /// Copies or converts a dequeued buffer's content; `None` for a frame the driver flagged as
    /// damaged.
    fn take(&mut self, buf: &sys::Buffer) -> Result<Option<Taken>, SourceError> {
        let Some(mapping) = self.mappings.get(buf.index as usize) else {
            return Err(SourceError::Device {
                device: self.device.clone(),
                message: format!("driver returned unknown buffer {}", buf.index),
            });
        };
        if buf.flags & sys::BUF_FLAG_ERROR != 0 || buf.bytesused == 0 {
            return Ok(None);
        }
        let data = mapping.bytes(buf.bytesused as usize);
        Ok(Some(match self.delivery {
            Delivery::Jpeg => Taken::Jpeg(Bytes::copy_from_slice(trim_after_eoi(data))),
            Delivery::Yuyv { stride, range } => {
                let (w, h) = (self.width, self.height);
                yuv::yuyv_to_ycbcr(data, w, h, stride, range, &mut self.scratch)?;
                Taken::Ycbcr
            }
        }))
    }
}

impl FrameSource for V4l2Source {
    fn next_frame(&mut self) -> Result<SourceFrame, SourceError> {
        loop {
            let buf = self.dequeue()?;
            let taken = self.take(&buf);
            // Hand the buffer straight back so the camera never runs dry.
            self.queue(buf.index).map_err(|e| {
                SourceError::io(format!("{}: requeueing a buffer", self.device.display()), e)
            })?;
            let jpeg = match taken? {
                None => continue, // the driver flagged a corrupt frame; wait for the next
                Some(Taken::Jpeg(data)) => {
                    let jpeg = jpeg::with_default_huffman_tables(data)?;
                    jpeg::probe(&jpeg)?;
                    jpeg
                }
                Some(Taken::Ycbcr) => {
                    jpeg::encode_ycbcr(&self.scratch, self.width, self.height, self.quality)?
                }
            };
            return Ok(SourceFrame {
                jpeg,
                width: self.width,
                height: self.height,
            });
        }
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        let mut kind = sys::BUF_TYPE_VIDEO_CAPTURE as libc::c_int;
        let _ = sys::ioctl(self.file.as_raw_fd(), &sys::VIDIOC_STREAMOFF, &mut kind);
    }
}

/// The pixel formats the device offers for capture.
fn pixel_formats(fd: libc::c_int) -> std::io::Result<Vec<u32>> {
    let mut formats = Vec::new();
    for index in 0.. {
        let mut desc = sys::FmtDesc::zeroed();
        desc.index = index;
        desc.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
        match sys::ioctl(fd, &sys::VIDIOC_ENUM_FMT, &mut desc) {
            Ok(()) => formats.push(desc.pixelformat),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break, // end of the list
            Err(e) => return Err(e),
        }
    }
    Ok(formats)
}

/// Requests `count` MMAP buffers and maps each.
fn map_buffers(fd: libc::c_int, count: u32) -> std::io::Result<Vec<Mapping>> {
    let mut request = sys::RequestBuffers::zeroed();
    request.count = count;
    request.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
    request.memory = sys::MEMORY_MMAP;
    sys::ioctl(fd, &sys::VIDIOC_REQBUFS, &mut request)?;
    let mut mappings = Vec::with_capacity(request.count as usize);
    for index in 0..request.count {
        let mut buf = sys::Buffer::zeroed();
        buf.type_ = sys::BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = sys::MEMORY_MMAP;
        buf.index = index;
        sys::ioctl(fd, &sys::VIDIOC_QUERYBUF, &mut buf)?;
        let len = buf.length as usize;
        // SAFETY (union access): for MMAP buffers the driver sets `m.offset`.
        let offset = unsafe { buf.m.offset };
        // off_t is 64-bit on 64-bit targets, 32-bit (or 64 with LFS) on 32-bit ones.
        #[allow(clippy::unnecessary_fallible_conversions)]
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::other("buffer offset out of range"))?;
        // SAFETY: maps `len` bytes of the device at the driver-given offset; the result is
        // checked before use and unmapped by `Mapping::drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        mappings.push(Mapping { ptr, len });
    }
    Ok(mappings)
}

/// `data` up to and including its last EOI: some cameras pad frames with zeros after it.
fn trim_after_eoi(data: &[u8]) -> &[u8] {
    match data.windows(2).rposition(|w| w == [0xFF, 0xD9]) {
        Some(at) => &data[..at + 2],
        None => data,
    }
}

/// A NUL-padded C string from a V4L2 struct.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `MJPG`, `YUYV`, ... for messages.
fn fourcc_name(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_an_io_error_naming_it() {
        let err =
            V4l2Source::open("/dev/video-does-not-exist", &V4l2Config::default()).unwrap_err();
        assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/dev/video-does-not-exist"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_camera_is_refused_clearly() {
        let err = V4l2Source::open("/dev/null", &V4l2Config::default()).unwrap_err();
        assert!(matches!(err, SourceError::Device { .. }), "{err:?}");
        assert!(err.to_string().contains("not a V4L2 device"), "{err}");
    }

    #[test]
    fn bad_config_is_refused_before_touching_the_device() {
        let config = V4l2Config {
            buffers: 1,
            ..V4l2Config::default()
        };
        let err = V4l2Source::open("/dev/null", &config).unwrap_err();
        assert!(err.to_string().contains("buffer count"), "{err}");
    }

    #[test]
    fn spec_opens_through_the_v4l2_source() {
        let err = crate::source::open("v4l2:/dev/null").err().unwrap();
        assert!(err.to_string().contains("not a V4L2 device"), "{err}");
    }

    #[test]
    fn padding_after_eoi_is_trimmed() {
        assert_eq!(
            trim_after_eoi(b"\xFF\xD8..\xFF\xD9\0\0\0"),
            b"\xFF\xD8..\xFF\xD9"
        );
        assert_eq!(trim_after_eoi(b"\xFF\xD8.."), b"\xFF\xD8..");
    }

    #[test]
    fn names_from_driver_structs() {
        assert_eq!(c_string(b"HD Webcam\0\0\0"), "HD Webcam");
        assert_eq!(fourcc_name(sys::PIX_FMT_MJPEG), "MJPG");
        assert_eq!(fourcc_name(sys::fourcc(b"Y10\0")), "Y10?");
    }
}
