//! The slice of the V4L2 kernel ABI (`<linux/videodev2.h>`) that capture needs.
//!
//! Declared by hand rather than generated with bindgen so building needs no libclang or kernel
//! headers. Layouts follow the C structs field by field (`#[repr(C)]`, with the same unions so
//! alignment and padding match), and ioctl numbers are computed from `size_of`, as the C macros
//! do, so they are right on 32- and 64-bit targets alike. The tests pin sizes and numbers to the
//! values of x86-64 Linux.

use std::marker::PhantomData;
use std::mem::size_of;

use libc::{c_ulong, c_void, timeval};

pub const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub const MEMORY_MMAP: u32 = 1;
pub const FIELD_ANY: u32 = 0;
pub const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
pub const CAP_STREAMING: u32 = 0x0400_0000;
pub const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
pub const BUF_FLAG_ERROR: u32 = 0x0000_0040;
pub const QUANTIZATION_FULL_RANGE: u32 = 1;

/// A four-character pixel format code, as `v4l2_fourcc` builds it.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

pub const PIX_FMT_MJPEG: u32 = fourcc(b"MJPG");
pub const PIX_FMT_JPEG: u32 = fourcc(b"JPEG");
pub const PIX_FMT_YUYV: u32 = fourcc(b"YUYV");

/// `struct v4l2_capability`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_fmtdesc`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FmtDesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_pix_format`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PixFormat {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
    pub colorspace: u32,
    pub priv_: u32,
    pub flags: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}

/// The union in `struct v4l2_format`. Its C version also holds `struct v4l2_window`, which has
/// pointers, so it is pointer-aligned; the zero-length pointer array reproduces that.
#[repr(C)]
#[derive(Clone, Copy)]
pub union FormatUnion {
    pub pix: PixFormat,
    pub raw_data: [u8; 200],
    _align: [*mut c_void; 0],
}

/// `struct v4l2_format`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Format {
    pub type_: u32,
    pub fmt: FormatUnion,
}

/// `struct v4l2_fract`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Fract {
    pub numerator: u32,
    pub denominator: u32,
}

/// `struct v4l2_captureparm`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CaptureParm {
    pub capability: u32,
    pub capturemode: u32,
    pub timeperframe: Fract,
    pub extendedmode: u32,
    pub readbuffers: u32,
    pub reserved: [u32; 4],
}

/// The union in `struct v4l2_streamparm`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union StreamParmUnion {
    pub capture: CaptureParm,
    pub raw_data: [u8; 200],
}

/// `struct v4l2_streamparm`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StreamParm {
    pub type_: u32,
    pub parm: StreamParmUnion,
}

/// `struct v4l2_requestbuffers`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RequestBuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}

/// `struct v4l2_timecode`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Timecode {
    pub type_: u32,
    pub flags: u32,
    pub frames: u8,
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub userbits: [u8; 4],
}

/// The `m` union in `struct v4l2_buffer`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union BufferM {
    pub offset: u32,
    pub userptr: c_ulong,
    pub planes: *mut c_void,
    pub fd: i32,
}

/// `struct v4l2_buffer`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub timestamp: timeval,
    pub timecode: Timecode,
    pub sequence: u32,
    pub memory: u32,
    pub m: BufferM,
    pub length: u32,
    pub reserved2: u32,
    /// `request_fd` / `reserved` union: both 32-bit.
    pub request_fd: i32,
}

/// All-zero value of a V4L2 struct, the starting point the API expects.
pub trait Zeroed: Copy + Sized {
    fn zeroed() -> Self {
        // SAFETY: implemented only for the `#[repr(C)]` structs above, made of integers, integer
        // arrays, raw pointers and unions of those, for which all-zero bytes are a valid value.
        #[allow(unsafe_code)]
        unsafe {
            std::mem::zeroed()
        }
    }
}

impl Zeroed for Capability {}
impl Zeroed for FmtDesc {}
impl Zeroed for Format {}
impl Zeroed for StreamParm {}
impl Zeroed for RequestBuffers {}
impl Zeroed for Buffer {}

/// An ioctl request number tied to the type it reads and/or writes, so a call cannot pass the
/// wrong struct.
pub struct Request<T> {
    pub number: u32,
    _arg: PhantomData<fn(&mut T)>,
}

// The `_IOC` encoding: powerpc, mips and sparc use 3 direction bits and a 13-bit size; everything
// else (x86, arm, aarch64, riscv, ...) uses asm-generic's 2 and 14.
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod ioc {
    pub const WRITE: u32 = 4;
    pub const READ: u32 = 2;
    pub const DIR_SHIFT: u32 = 29;
}
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod ioc {
    pub const WRITE: u32 = 1;
    pub const READ: u32 = 2;
    pub const DIR_SHIFT: u32 = 30;
}

impl<T> Request<T> {
    const fn new(dir: u32, nr: u32) -> Request<T> {
        Request {
            number: (dir << ioc::DIR_SHIFT)
                | ((size_of::<T>() as u32) << 16)
                | ((b'V' as u32) << 8)
                | nr,
            _arg: PhantomData,
        }
    }
    /// `_IOR('V', nr, T)`
    const fn read(nr: u32) -> Request<T> {
        Request::new(ioc::READ, nr)
    }
    /// `_IOW('V', nr, T)`
    const fn write(nr: u32) -> Request<T> {
        Request::new(ioc::WRITE, nr)
    }
    /// `_IOWR('V', nr, T)`
    const fn read_write(nr: u32) -> Request<T> {
        Request::new(ioc::READ | ioc::WRITE, nr)
    }
}

pub const VIDIOC_QUERYCAP: Request<Capability> = Request::read(0);
pub const VIDIOC_ENUM_FMT: Request<FmtDesc> = Request::read_write(2);
pub const VIDIOC_S_FMT: Request<Format> = Request::read_write(5);
pub const VIDIOC_REQBUFS: Request<RequestBuffers> = Request::read_write(8);
pub const VIDIOC_QUERYBUF: Request<Buffer> = Request::read_write(9);
pub const VIDIOC_QBUF: Request<Buffer> = Request::read_write(15);
pub const VIDIOC_DQBUF: Request<Buffer> = Request::read_write(17);
pub const VIDIOC_STREAMON: Request<libc::c_int> = Request::write(18);
pub const VIDIOC_STREAMOFF: Request<libc::c_int> = Request::write(19);
pub const VIDIOC_S_PARM: Request<StreamParm> = Request::read_write(22);

/// Calls `ioctl(fd, request, arg)`, retrying when interrupted by a signal.
pub fn ioctl<T>(fd: libc::c_int, request: &Request<T>, arg: &mut T) -> std::io::Result<()> {
    loop {
        // SAFETY: `arg` is a valid, exclusive pointer to a `T`, and `request` was built from
        // `size_of::<T>()`, so the kernel reads and writes within it.
        #[allow(unsafe_code)]
        let result = unsafe {
            libc::ioctl(
                fd,
                request.number as libc::Ioctl,
                arg as *mut T as *mut c_void,
            )
        };
        if result != -1 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_kernel_headers() {
        assert_eq!(size_of::<Capability>(), 104);
        assert_eq!(size_of::<FmtDesc>(), 64);
        assert_eq!(size_of::<PixFormat>(), 48);
        assert_eq!(size_of::<Format>(), 208);
        assert_eq!(size_of::<StreamParm>(), 204);
        assert_eq!(size_of::<RequestBuffers>(), 20);
        assert_eq!(size_of::<Buffer>(), 88);
        assert_eq!(std::mem::offset_of!(Buffer, m), 64);
        assert_eq!(std::mem::offset_of!(Format, fmt), 8);
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // As printed by a C program including <linux/videodev2.h> on x86-64.
        assert_eq!(VIDIOC_QUERYCAP.number, 0x8068_5600);
        assert_eq!(VIDIOC_ENUM_FMT.number, 0xC040_5602);
        assert_eq!(VIDIOC_S_FMT.number, 0xC0D0_5605);
        assert_eq!(VIDIOC_REQBUFS.number, 0xC014_5608);
        assert_eq!(VIDIOC_QUERYBUF.number, 0xC058_5609);
        assert_eq!(VIDIOC_QBUF.number, 0xC058_560F);
        assert_eq!(VIDIOC_DQBUF.number, 0xC058_5611);
        assert_eq!(VIDIOC_STREAMON.number, 0x4004_5612);
        assert_eq!(VIDIOC_STREAMOFF.number, 0x4004_5613);
        assert_eq!(VIDIOC_S_PARM.number, 0xC0CC_5616);
    }

    #[test]
    fn fourcc_codes() {
        assert_eq!(PIX_FMT_MJPEG, 0x4750_4A4D);
        assert_eq!(PIX_FMT_YUYV, 0x5659_5559);
    }
}
