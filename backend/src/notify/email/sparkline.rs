//! The equity sparkline of a finished backtest, as a small PNG sent inside the email (an inline `cid:` part,
//! never a remote image: no tracking, and it shows in clients that block remote content).
//!
//! The image is drawn at twice its displayed size (sharp on high-density screens) from the payload's points,
//! so the same event always gives the same bytes: a retry sends the same message.

/// Displayed size in CSS pixels (the `<img>` attributes); the PNG has twice as many pixels each way.
pub const WIDTH: u32 = 240;
pub const HEIGHT: u32 = 48;
/// The part's `Content-ID` (the HTML refers to `cid:` + this).
pub const CONTENT_ID: &str = "equity-sparkline@vortex";

const SCALE: u32 = 2;
const PAD: f32 = 4.0;
const BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
const UP: [u8; 3] = [0x1a, 0x7f, 0x37];
const DOWN: [u8; 3] = [0xcf, 0x22, 0x2e];

/// The PNG of `points` (an equity curve), or `None` with fewer than two finite points or a broken encoder.
pub fn png(points: &[f32]) -> Option<Vec<u8>> {
    let points: Vec<f32> = points.iter().copied().filter(|v| v.is_finite()).collect();
    if points.len() < 2 {
        return None;
    }
    let (w, h) = (WIDTH * SCALE, HEIGHT * SCALE);
    let color = if points[points.len() - 1] >= points[0] {
        UP
    } else {
        DOWN
    };
    let (lo, hi) = points
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = if hi - lo > f32::EPSILON { hi - lo } else { 1.0 };
    #[allow(clippy::cast_precision_loss)]
    let (wf, hf, last) = (w as f32, h as f32, (points.len() - 1) as f32);
    // The curve's height (pixel row, top = 0) at each pixel column, linearly interpolated.
    let y_at = |x: u32| -> f32 {
        #[allow(clippy::cast_precision_loss)]
        let t = x as f32 / (wf - 1.0) * last;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = (t.floor() as usize).min(points.len() - 2);
        #[allow(clippy::cast_precision_loss)]
        let frac = t - i as f32;
        let v = points[i] + (points[i + 1] - points[i]) * frac;
        PAD + (1.0 - (v - lo) / span) * (hf - 2.0 * PAD)
    };
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    for x in 0..w {
        let y0 = y_at(x);
        // The line is the span between this column's height and its neighbours', two pixels thick.
        let prev = if x > 0 { y_at(x - 1) } else { y0 };
        let next = if x + 1 < w { y_at(x + 1) } else { y0 };
        let top = y0.min((prev + y0) / 2.0).min((next + y0) / 2.0) - 1.5;
        let bottom = y0.max((prev + y0) / 2.0).max((next + y0) / 2.0) + 1.5;
        for y in 0..h {
            #[allow(clippy::cast_precision_loss)]
            let yf = y as f32 + 0.5;
            let px = if yf >= top && yf <= bottom {
                color
            } else if yf > bottom {
                // A light fill under the curve.
                blend(BACKGROUND, color, 0.12)
            } else {
                BACKGROUND
            };
            let at = ((y * w + x) * 3) as usize;
            rgb[at..at + 3].copy_from_slice(&px);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().ok()?;
        writer.write_image_data(&rgb).ok()?;
        writer.finish().ok()?;
    }
    Some(out)
}

fn blend(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mix = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * t).round() as u8;
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn pixel(buf: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
        let at = ((y * w + x) * 3) as usize;
        [buf[at], buf[at + 1], buf[at + 2]]
    }

    #[test]
    fn notif_a_rising_curve_is_a_green_line_from_bottom_left_to_top_right() {
        let rising: Vec<f32> = (0..50).map(|i| 100.0 + i as f32).collect();
        let bytes = png(&rising).unwrap();
        let (info, buf) = decode(&bytes);
        assert_eq!((info.width, info.height), (WIDTH * 2, HEIGHT * 2));
        let (w, h) = (info.width, info.height);
        // The line starts low on the left and ends high on the right; above it is background.
        assert_eq!(pixel(&buf, w, 0, h - 5), UP);
        assert_eq!(pixel(&buf, w, w - 1, 4), UP);
        assert_eq!(pixel(&buf, w, 0, 2), BACKGROUND);
        // Under the line: the light fill.
        assert_eq!(pixel(&buf, w, w - 1, h - 1), blend(BACKGROUND, UP, 0.12));
        // The same points give the same bytes (a retried email is the same message).
        assert_eq!(png(&rising).unwrap(), bytes);
    }

    #[test]
    fn notif_a_falling_curve_is_red_and_degenerate_input_has_no_image() {
        let falling = [10.0, 9.0, 8.5, 7.0];
        let (info, buf) = decode(&png(&falling).unwrap());
        assert_eq!(pixel(&buf, info.width, 0, 4), DOWN);
        assert!(png(&[]).is_none());
        assert!(png(&[1.0]).is_none());
        assert!(png(&[f32::NAN, 1.0, f32::INFINITY]).is_none());
        // A flat curve still draws (mid-height line, no division by zero).
        assert!(png(&[5.0, 5.0, 5.0]).is_some());
    }
}
