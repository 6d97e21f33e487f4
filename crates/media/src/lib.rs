//! framewire's media layer: JPEG frames in, JPEG frames out.
//!
//! framewire moves JPEG frames, so everything here converges on one JPEG per frame handed around as
//! [`bytes::Bytes`]. Frames that already are JPEG (an MJPEG pipe, a camera offering MJPEG, `.jpg`
//! files) pass through untouched: re-encoding would cost CPU a Raspberry Pi does not have and lose
//! quality for nothing. Only raw pixels (PNG files, YUYV cameras, the synthetic test pattern) are
//! encoded.
//!
//! - [`mjpeg::Splitter`] cuts a concatenated-JPEG byte stream into frames, without I/O.
//! - [`jpeg`] probes dimensions, encodes RGB and decodes to RGB; [`png`] decodes PNG.
//! - [`image`] holds decoded pixels and makes [`thumbnail`]s for the hub.
//! - [`yuv`] turns YUYV camera pixels into JPEG without a detour through RGB.
//! - [`source`] turns a synthetic pattern, a folder, an MJPEG reader or a V4L2 camera into a
//!   blocking [`FrameSource`].
//!
//! Cargo features, both off by default:
//! - `v4l2`: USB cameras through raw V4L2 ioctls (Linux; needs only `libc`, no system packages).
//! - `turbojpeg`: encode RGB with libjpeg-turbo, two to three times as fast; builds libjpeg-turbo from
//!   source, so it needs cmake and nasm.

#![deny(unsafe_code)]

pub mod image;
pub mod jpeg;
pub mod mjpeg;
pub mod png;
pub mod source;
pub mod yuv;

pub use image::{decode_cost, probe, thumbnail, ImageError, ImageFormat, RgbImage, MAX_PIXELS};
pub use source::{FrameSource, SourceError, SourceFrame, SourceSpec};

#[cfg(test)]
mod test_images;
