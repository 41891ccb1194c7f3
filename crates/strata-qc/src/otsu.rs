//! Otsu's threshold, bit-identical to scikit-image's `threshold_otsu` on integer images.

/// Otsu threshold of an integer image given its histogram (`hist[v]` = number of pixels of value
/// `v`), reproducing scikit-image 0.26 `skimage.filters.threshold_otsu(image)` exactly.
///
/// scikit-image, for integer input, ignores `nbins` and uses one bin per integer value between
/// the image's minimum and maximum (`exposure.histogram(..., source_range='image')`), converts
/// the counts to `float32`, and then:
///
/// - `weight1 = cumsum(counts)`, `weight2 = cumsum(counts[::-1])[::-1]` (sequential `float32`
///   sums),
/// - `mean1 = cumsum(counts * centers) / weight1`, `mean2` the same from the top (`float64`),
/// - `variance12 = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2` (the weight
///   product is rounded to `float32`),
/// - returns `centers[argmax(variance12)]` (the first maximum).
///
/// An image with a single value returns that value. The same `float32` roundings are applied
/// here, so the result is identical even for planes above 2^24 pixels, where `float32` counts
/// are no longer exact. Returns `None` for an empty histogram.
#[must_use]
pub fn otsu_threshold(hist: &[u64]) -> Option<u32> {
    let first = hist.iter().position(|&c| c > 0)?;
    let last = hist.iter().rposition(|&c| c > 0)?;
    if first == last {
        return Some(first as u32);
    }
    let counts: Vec<f32> = hist[first..=last].iter().map(|&c| c as f32).collect();
    let n = counts.len();
    let centers = |i: usize| (first + i) as f64;
    let mut weight1 = vec![0f32; n];
    let mut acc = 0f32;
    for (w, &c) in weight1.iter_mut().zip(&counts) {
        acc += c;
        *w = acc;
    }
    let mut weight2 = vec![0f32; n];
    let mut acc = 0f32;
    for i in (0..n).rev() {
        acc += counts[i];
        weight2[i] = acc;
    }
    let mut mean1 = vec![0f64; n];
    let mut acc = 0f64;
    for i in 0..n {
        acc += f64::from(counts[i]) * centers(i);
        mean1[i] = acc / f64::from(weight1[i]);
    }
    let mut mean2 = vec![0f64; n];
    let mut acc = 0f64;
    for i in (0..n).rev() {
        acc += f64::from(counts[i]) * centers(i);
        mean2[i] = acc / f64::from(weight2[i]);
    }
    let mut best = 0usize;
    let mut best_value = f64::NEG_INFINITY;
    for i in 0..n - 1 {
        let w = f64::from(weight1[i] * weight2[i + 1]);
        let d = mean1[i] - mean2[i + 1];
        let v = w * (d * d);
        // numpy.argmax: first maximum; a NaN (impossible here: both weights are positive)
        // would win.
        if v > best_value || v.is_nan() {
            best = i;
            best_value = v;
            if v.is_nan() {
                break;
            }
        }
    }
    Some((first + best) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_value_and_empty() {
        assert_eq!(otsu_threshold(&[]), None);
        assert_eq!(otsu_threshold(&[0, 0, 0]), None);
        assert_eq!(otsu_threshold(&[0, 0, 7, 0]), Some(2));
    }

    #[test]
    fn float32_roundings_decide_near_ties_like_scikit_image() {
        // skimage.filters.threshold_otsu(hist=np.array(h)); the same computation in float64
        // gives 5, 3 and 8.
        let cases: [(&[u64], u32); 3] = [
            (
                &[
                    1786094836, 615284856, 978691675, 1156679455, 734005512, 120740027, 2301541101,
                    2301541102, 120740029, 734005513, 1156679457, 978691675, 615284856, 1786094837,
                ],
                7,
            ),
            (
                &[
                    1085458817, 143153491, 57691541, 202433412, 1555515217, 1555515218, 202433413,
                    57691543, 143153491, 1085458817,
                ],
                5,
            ),
            (
                &[
                    1690790062, 2410648978, 436601452, 1167169145, 510074835, 996326711, 881861940,
                    2725532481, 2725532482, 881861940, 996326711, 510074835, 1167169146, 436601452,
                    2410648979, 1690790062,
                ],
                6,
            ),
        ];
        for (h, expected) in cases {
            assert_eq!(otsu_threshold(h), Some(expected));
        }
    }

    #[test]
    fn two_values_split_at_the_lower() {
        // skimage.filters.threshold_otsu(np.array([[10, 200]], np.uint8)) == 10
        let mut h = vec![0u64; 256];
        h[10] = 1;
        h[200] = 1;
        assert_eq!(otsu_threshold(&h), Some(10));
    }
}
