//! Link rank: PageRank over the link graph, scaled to 0..100 like Ahrefs' UR and DR.
//! Pure computation; loading the graph and storing the scores is in `db::rank`.

/// The damping factor of the original PageRank paper.
pub const DAMPING: f64 = 0.85;

/// Iterations stop when the L1 change of the scores falls below this, or at the maximum.
const TOLERANCE: f64 = 1e-10;
const MAX_ITERATIONS: usize = 200;

/// PageRank of a graph with `nodes` nodes and the given directed edges (duplicates count
/// once). Scores sum to 1. A node without outgoing edges spreads its score over all nodes,
/// as if it linked everywhere. Returns the scores and the iterations used.
pub fn pagerank(nodes: usize, edges: &[(usize, usize)]) -> (Vec<f64>, usize) {
    if nodes == 0 {
        return (Vec::new(), 0);
    }
    let mut unique: Vec<(usize, usize)> = edges.iter().copied().filter(|(s, t)| *s < nodes && *t < nodes).collect();
    unique.sort_unstable();
    unique.dedup();

    let mut out_degree = vec![0usize; nodes];
    for (source, _) in &unique {
        out_degree[*source] += 1;
    }

    let n = nodes as f64;
    let mut rank = vec![1.0 / n; nodes];
    let mut next = vec![0.0; nodes];
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        iterations += 1;
        let dangling: f64 = (0..nodes).filter(|&i| out_degree[i] == 0).map(|i| rank[i]).sum();
        let base = (1.0 - DAMPING) / n + DAMPING * dangling / n;
        next.iter_mut().for_each(|r| *r = base);
        for (source, target) in &unique {
            next[*target] += DAMPING * rank[*source] / out_degree[*source] as f64;
        }
        let change: f64 = rank.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut rank, &mut next);
        if change < TOLERANCE {
            break;
        }
    }
    (rank, iterations)
}

/// Scale PageRank scores to 0..100 on a logarithmic scale: the lowest score in the graph
/// gets 0 and the highest 100, because link popularity spans orders of magnitude. Scores
/// are rounded to two decimals, so that equal PageRanks that differ only by floating-point
/// error show as the same rating (99.99999999999999 as 100).
pub fn scale(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(0.0f64, f64::max);
    scale_up_to(scores, max)
}

/// Scale domain PageRank scores like [`scale`], but with 100 at the highest score that any
/// node of a graph this size can have: a hub that every other node links to, and links to
/// nothing else. A rating then measures how much of the whole graph points at a domain. When one
/// crawled domain links to many others, they share its links and rate low, instead of all
/// rating 100 as the highest scores present.
pub fn scale_to_graph(scores: &[f64]) -> Vec<f64> {
    let nodes = scores.len() as f64;
    // Each other node of that graph scores 1 / (n + d (n - 1)), as the hub test below works out.
    let hub = 1.0 - (nodes - 1.0) / (nodes + DAMPING * (nodes - 1.0));
    scale_up_to(scores, hub)
}

/// Scale scores logarithmically from the lowest positive one (0) to `max` (100).
fn scale_up_to(scores: &[f64], max: f64) -> Vec<f64> {
    let min = scores.iter().copied().filter(|s| *s > 0.0).fold(f64::INFINITY, f64::min);
    if !min.is_finite() || max <= min {
        return vec![0.0; scores.len()];
    }
    let span = (max / min).ln();
    let rating = |score: f64| ((100.0 * (score / min).ln() / span * 100.0).round() / 100.0).min(100.0);
    scores.iter().map(|s| if *s <= 0.0 { 0.0 } else { rating(*s) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-9, "{actual:?} differs from {expected:?}");
        }
    }

    #[test]
    fn cycle_is_uniform() {
        let (scores, _) = pagerank(3, &[(0, 1), (1, 2), (2, 0)]);
        assert_close(&scores, &[1.0 / 3.0; 3]);
    }

    #[test]
    fn two_pages_linking_to_a_hub() {
        // Nodes 1 and 2 link to node 0, which links nowhere and so spreads its score over
        // all three. By hand: r1 = (1 - d)/3 + d*r0/3 and r0 = 1 - 2*r1 give r1 = 1/(3 + 2d).
        let (scores, _) = pagerank(3, &[(1, 0), (2, 0)]);
        let r1 = 1.0 / (3.0 + 2.0 * DAMPING);
        let r0 = 1.0 - 2.0 * r1;
        assert_close(&scores, &[r0, r1, r1]);
    }

    #[test]
    fn duplicate_edges_count_once() {
        let (once, _) = pagerank(2, &[(0, 1)]);
        let (twice, _) = pagerank(2, &[(0, 1), (0, 1)]);
        assert_close(&once, &twice);
    }

    #[test]
    fn scores_sum_to_one() {
        let edges = [(0, 1), (1, 2), (2, 0), (3, 0), (3, 1), (4, 4)];
        let (scores, _) = pagerank(5, &edges);
        assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn scale_rounds_floating_point_error() {
        let top = 0.3;
        let almost_top = 0.1 + 0.2;
        assert_ne!(top, almost_top);
        assert_eq!(scale(&[0.01, top, almost_top]), vec![0.0, 100.0, 100.0]);
    }

    #[test]
    fn hub_of_whole_graph_rates_hundred() {
        let edges: Vec<(usize, usize)> = (1..20).map(|leaf| (leaf, 0)).collect();
        let (scores, _) = pagerank(20, &edges);
        let rated = scale_to_graph(&scores);
        assert_eq!(rated[0], 100.0);
        assert!(rated[1..].iter().all(|r| *r == 0.0), "{rated:?}");
    }

    #[test]
    fn targets_of_one_domain_rate_low() {
        // One crawled domain links to 50 others, which link nowhere.
        let edges: Vec<(usize, usize)> = (1..51).map(|target| (0, target)).collect();
        let (scores, _) = pagerank(51, &edges);
        let rated = scale_to_graph(&scores);
        assert_eq!(rated[0], 0.0);
        assert!(rated[1..].iter().all(|r| *r > 0.0 && *r < 10.0), "{rated:?}");
        assert_eq!(scale(&scores)[1], 100.0, "the observed maximum rates every target 100");
    }

    #[test]
    fn scale_is_logarithmic_zero_to_hundred() {
        let scaled = scale(&[0.01, 0.1, 1.0]);
        assert_close(&scaled, &[0.0, 50.0, 100.0]);
        assert_close(&scale(&[0.5, 0.5]), &[0.0, 0.0]);
    }
}
