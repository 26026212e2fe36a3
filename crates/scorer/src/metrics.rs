//! Classification metrics from a confusion matrix, with scikit-learn's conventions:
//!
//! - rows are the true class, columns the predicted class;
//! - precision = TP / predicted, recall = TP / support, F1 = 2PR / (P + R);
//! - a ratio whose denominator is 0 is reported as **0** (scikit-learn's default
//!   `zero_division="warn"`: 0 plus a warning), and a warning names the class;
//! - macro averages are the unweighted means over the classes that occur in the truth or in the
//!   predictions (scikit-learn's default label set when `labels` is not given); a class that
//!   neither occurs nor is predicted is left out, and said so. Macro F1 is the mean of the
//!   per-class F1 scores, not the F1 of the macro precision and recall;
//! - weighted averages weight each class by its support.

use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// `counts[t][p]`: samples of true class `t` predicted as `p`.
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    pub fn new(classes: usize) -> Confusion {
        Confusion {
            counts: vec![vec![0; classes]; classes],
        }
    }

    /// A matrix from (true, predicted) pairs.
    pub fn from_pairs(classes: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut c = Confusion::new(classes);
        for (t, p) in pairs {
            c.add(t, p);
        }
        c
    }

    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> u64 {
        (0..self.classes()).map(|i| self.counts[i][i]).sum()
    }

    /// Row sum: samples whose true class is `c`.
    pub fn support(&self, c: usize) -> u64 {
        self.counts[c].iter().sum()
    }

    /// Column sum: samples predicted as `c`.
    pub fn predicted(&self, c: usize) -> u64 {
        self.counts.iter().map(|row| row[c]).sum()
    }

    /// correct / total, computed as the trainer does (`correct as f64 / n as f64`), so equal
    /// counts give the identical number. 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Precision, recall and F1 of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples of this class.
    pub support: u64,
    /// Samples predicted as this class.
    pub predicted: u64,
    pub true_positives: u64,
}

/// Averages over classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Everything computed from one confusion matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub samples: u64,
    pub correct: u64,
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean over `macro_classes`.
    pub macro_avg: Averages,
    /// The classes the macro average is taken over: those with support or predictions.
    pub macro_classes: Vec<String>,
    /// Mean weighted by support.
    pub weighted_avg: Averages,
    /// Undefined ratios reported as 0, and classes left out of the macro average.
    pub warnings: Vec<String>,
}

impl Metrics {
    /// Metrics of `conf`, whose classes are `names` (in label order).
    pub fn compute(conf: &Confusion, names: &[String]) -> Metrics {
        assert_eq!(conf.classes(), names.len(), "one name per class");
        let mut per_class = Vec::with_capacity(names.len());
        let mut warnings = Vec::new();
        for (c, name) in names.iter().enumerate() {
            let tp = conf.counts[c][c];
            let support = conf.support(c);
            let predicted = conf.predicted(c);
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            match (support, predicted) {
                (0, 0) => warnings.push(format!(
                    "class {name} has no samples and was never predicted: its precision, recall \
                     and F1 are reported as 0 and it is left out of the macro average"
                )),
                (0, _) => warnings.push(format!(
                    "class {name} has no samples: its recall (0/0) and F1 are reported as 0"
                )),
                (_, 0) => warnings.push(format!(
                    "class {name} was never predicted: its precision (0/0) is reported as 0"
                )),
                _ => {}
            }
            per_class.push(ClassMetrics {
                class: name.clone(),
                precision,
                recall,
                f1,
                support,
                predicted,
                true_positives: tp,
            });
        }
        let present: Vec<&ClassMetrics> = per_class
            .iter()
            .filter(|m| m.support > 0 || m.predicted > 0)
            .collect();
        let mean = |f: fn(&ClassMetrics) -> f64| {
            if present.is_empty() {
                0.0
            } else {
                present.iter().map(|m| f(m)).sum::<f64>() / present.len() as f64
            }
        };
        let macro_avg = Averages {
            precision: mean(|m| m.precision),
            recall: mean(|m| m.recall),
            f1: mean(|m| m.f1),
        };
        let total = conf.total();
        let weighted = |f: fn(&ClassMetrics) -> f64| {
            if total == 0 {
                0.0
            } else {
                per_class
                    .iter()
                    .map(|m| f(m) * m.support as f64)
                    .sum::<f64>()
                    / total as f64
            }
        };
        let weighted_avg = Averages {
            precision: weighted(|m| m.precision),
            recall: weighted(|m| m.recall),
            f1: weighted(|m| m.f1),
        };
        Metrics {
            accuracy: conf.accuracy(),
            samples: total,
            correct: conf.correct(),
            macro_classes: present.iter().map(|m| m.class.clone()).collect(),
            per_class,
            macro_avg,
            weighted_avg,
            warnings,
        }
    }
}

/// Index of the largest value; the first one on ties (as `argmax` in numpy and candle).
pub fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn three_class_example_by_hand() {
        // y_true = [0,0,0,0,1,1,1,2,2,2], y_pred = [0,0,1,2,1,1,0,2,2,1]
        let t = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        let p = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1];
        let conf = Confusion::from_pairs(3, t.into_iter().zip(p));
        assert_eq!(
            conf.counts,
            vec![vec![2, 1, 1], vec![1, 2, 0], vec![0, 1, 2]]
        );
        let m = Metrics::compute(&conf, &names(3));
        assert_eq!((m.correct, m.samples), (6, 10));
        assert_eq!(m.accuracy, 0.6);
        // class 0: tp 2, predicted 3, support 4: P 2/3, R 1/2, F1 = 2·(1/3)/(7/6) = 4/7.
        let c0 = &m.per_class[0];
        assert!(close(c0.precision, 2.0 / 3.0) && close(c0.recall, 0.5));
        assert!(close(c0.f1, 4.0 / 7.0));
        // class 1: tp 2, predicted 4, support 3: P 1/2, R 2/3, F1 4/7.
        let c1 = &m.per_class[1];
        assert!(close(c1.precision, 0.5) && close(c1.recall, 2.0 / 3.0));
        assert!(close(c1.f1, 4.0 / 7.0));
        // class 2: tp 2, predicted 3, support 3: P = R = F1 = 2/3.
        let c2 = &m.per_class[2];
        assert!(close(c2.precision, 2.0 / 3.0) && close(c2.f1, 2.0 / 3.0));
        // scikit-learn: precision_recall_fscore_support(average="macro") gives
        // (0.6111111, 0.6111111, 0.6031746).
        assert!(close(
            m.macro_avg.precision,
            (2.0 / 3.0 + 0.5 + 2.0 / 3.0) / 3.0
        ));
        assert!(close(
            m.macro_avg.recall,
            (0.5 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0
        ));
        assert!(close(
            m.macro_avg.f1,
            (4.0 / 7.0 + 4.0 / 7.0 + 2.0 / 3.0) / 3.0
        ));
        // weighted by support 4, 3, 3.
        assert!(close(
            m.weighted_avg.recall,
            (0.5 * 4.0 + 2.0 / 3.0 * 3.0 + 2.0 / 3.0 * 3.0) / 10.0
        ));
        assert!(m.warnings.is_empty());
        assert_eq!(m.macro_classes, names(3));
    }

    #[test]
    fn never_predicted_class_has_zero_precision_with_a_warning() {
        // Class 2 occurs twice but is never predicted.
        let conf = Confusion::from_pairs(3, [(0, 0), (0, 0), (1, 1), (2, 0), (2, 1)]);
        let m = Metrics::compute(&conf, &names(3));
        let c2 = &m.per_class[2];
        assert_eq!((c2.precision, c2.recall, c2.f1), (0.0, 0.0, 0.0));
        assert_eq!((c2.support, c2.predicted), (2, 0));
        assert_eq!(m.warnings.len(), 1);
        assert!(
            m.warnings[0].contains("c2 was never predicted"),
            "{:?}",
            m.warnings
        );
        // Still in the macro average (it has support): class 0 P 2/3 R 1 F1 0.8, class 1 P 1/2
        // R 1 F1 2/3, class 2 zeros.
        assert_eq!(m.macro_classes.len(), 3);
        assert!(close(m.macro_avg.precision, (2.0 / 3.0 + 0.5) / 3.0));
        assert!(close(m.macro_avg.recall, 2.0 / 3.0));
        assert!(close(m.macro_avg.f1, (0.8 + 2.0 / 3.0) / 3.0));
        assert_eq!(m.accuracy, 0.6);
    }

    #[test]
    fn zero_support_class() {
        // Class 1 has no samples but is predicted once; class 2 neither occurs nor is predicted.
        let conf = Confusion::from_pairs(3, [(0, 0), (0, 1), (0, 0)]);
        let m = Metrics::compute(&conf, &names(3));
        let c1 = &m.per_class[1];
        assert_eq!(
            (c1.precision, c1.recall, c1.f1, c1.support),
            (0.0, 0.0, 0.0, 0)
        );
        assert_eq!(m.macro_classes, vec!["c0".to_string(), "c1".to_string()]);
        // class 0: P 1, R 2/3, F1 0.8; class 1 zeros; class 2 left out.
        assert!(close(m.macro_avg.precision, 0.5));
        assert!(close(m.macro_avg.recall, 1.0 / 3.0));
        assert!(close(m.macro_avg.f1, 0.4));
        assert!(close(m.weighted_avg.f1, 0.8));
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(m.warnings[0].contains("c1 has no samples"));
        assert!(m.warnings[1].contains("left out of the macro average"));
    }

    #[test]
    fn empty_and_perfect() {
        let m = Metrics::compute(&Confusion::new(2), &names(2));
        assert_eq!(m.accuracy, 0.0);
        assert_eq!(m.macro_avg.f1, 0.0);
        let perfect = Confusion::from_pairs(2, [(0, 0), (1, 1), (1, 1)]);
        let m = Metrics::compute(&perfect, &names(2));
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.macro_avg.f1, 1.0);
        assert_eq!(m.weighted_avg.precision, 1.0);
    }

    #[test]
    fn accuracy_is_the_trainers_division() {
        let pairs = (0..7).map(|i| (0, usize::from(i % 3 == 0)));
        let conf = Confusion::from_pairs(2, pairs);
        assert_eq!(conf.accuracy(), 4.0 / 7.0);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1f32, 0.5, 0.5, 0.2]), 1);
        assert_eq!(argmax(&[3.0f64]), 0);
        assert_eq!(argmax(&[1u64, 0, 2]), 2);
    }
}
