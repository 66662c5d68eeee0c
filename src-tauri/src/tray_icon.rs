//! Tray icons drawn in code, one per phase, so their look is a unit test and not four binary
//! files to keep in step. One colour plus alpha: on macOS they are template images (the menu
//! bar tints them for light and dark); Linux panels get them in the colour the platform picks.

use dockroute_controller::view::Phase;

/// 22 pt menu-bar icons at 2× scale.
pub const SIZE: u32 = 44;

/// RGBA pixels, row by row.
pub fn draw(phase: Phase, rgb: [u8; 3]) -> Vec<u8> {
    let c = SIZE as f32 / 2.0;
    let shape = |x: f32, y: f32| -> f32 {
        let (dx, dy) = (x - c, y - c);
        let r = (dx * dx + dy * dy).sqrt();
        let ring = (16.0..=19.5).contains(&r);
        let disk = r <= 10.0;
        match phase {
            Phase::Disconnected => f32::from(ring) * 0.55,
            Phase::Connecting => f32::from(ring).max(f32::from(disk) * 0.45),
            Phase::Connected => f32::from(ring || disk),
            // The ring with a small dot: on, but asleep.
            Phase::Idle => f32::from(ring || r <= 4.5),
            // An exclamation mark in the ring.
            Phase::Error => {
                let bar = dx.abs() <= 2.2 && (-10.0..=3.5).contains(&dy);
                let dot = (dx * dx + (dy - 8.5) * (dy - 8.5)).sqrt() <= 2.4;
                f32::from(ring || bar || dot)
            }
        }
    };
    // 4×4 samples per pixel: smooth edges without a drawing library.
    const N: u32 = 4;
    let mut out = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for py in 0..SIZE {
        for px in 0..SIZE {
            let mut cover = 0.0;
            for sy in 0..N {
                for sx in 0..N {
                    let x = px as f32 + (sx as f32 + 0.5) / N as f32;
                    let y = py as f32 + (sy as f32 + 0.5) / N as f32;
                    cover += shape(x, y);
                }
            }
            let alpha = (cover / (N * N) as f32 * 255.0).round() as u8;
            out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], alpha]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Phase; 5] = [Phase::Disconnected, Phase::Connecting, Phase::Connected, Phase::Error, Phase::Idle];

    fn ink(px: &[u8]) -> u64 {
        px.chunks(4).map(|p| u64::from(p[3])).sum()
    }

    #[test]
    fn each_phase_has_its_own_look() {
        let icons: Vec<Vec<u8>> = ALL.iter().map(|p| draw(*p, [0, 0, 0])).collect();
        for (i, a) in icons.iter().enumerate() {
            assert_eq!(a.len(), (SIZE * SIZE * 4) as usize);
            for b in &icons[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // More ink means more "on": disconnected is the faintest, connected the fullest.
        let (off, connecting, on) = (ink(&icons[0]), ink(&icons[1]), ink(&icons[2]));
        assert!(off < connecting && connecting < on, "{off} {connecting} {on}");
    }

    #[test]
    fn one_colour_and_alpha_only() {
        for p in ALL {
            let px = draw(p, [10, 20, 30]);
            assert!(px.chunks(4).all(|p| p[..3] == [10, 20, 30]));
            // The corners are transparent: the icon sits on whatever the menu bar is.
            assert_eq!(px[3], 0);
            let darkest = px.chunks(4).map(|p| p[3]).max().unwrap();
            assert!(darkest >= 140, "{p:?} is visible: alpha up to {darkest}");
            assert!(px.chunks(4).any(|p| p[3] > 0 && p[3] < 255), "edges are smoothed");
        }
    }
}
