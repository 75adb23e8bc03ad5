"""The random-forest example of "Introduction to Hyperopt", run with parzen.

Only the import lines differ from the article. The article's ``objective(params, X, y)`` does
not match what fmin calls, so the objective takes the one argument fmin passes. The data set
ships with scikit-learn, so this runs offline.

    python examples/random_forest.py [--max-evals 150] [--seed 2021]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from parzen import STATUS_OK, Trials, fmin, hp, space_eval, tpe
from parzen.pyll import scope

X, y = load_breast_cancer(return_X_y=True)

# Perform train test split
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.20, random_state=2021)


# Define objective function
def objective(params):
    # Define classifier
    random_forest = RandomForestClassifier(**params, n_jobs=-1)

    # Fit random forest
    random_forest.fit(X_train, y_train)

    # Predict on test
    y_pred = random_forest.predict(X_test)

    # Get accuracy
    accuracy = accuracy_score(y_test, y_pred)

    # Return results
    return {"loss": -1 * accuracy,
            "status": STATUS_OK,
            "eval_time": time.time()
            }


# Define parameter space using hyperopt random variables
param_space = {
    "criterion": hp.choice("criterion", ["gini", "entropy"]),
    "n_estimators": scope.int(hp.quniform("n_estimators", 10, 100, 10)),
    "max_depth": scope.int(hp.quniform("max_depth", 2, 8, 1)),
    "max_features": hp.choice("max_features", ["sqrt", 10, 15]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int, default=150)
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()

    # Set up trials for tracking
    trials = Trials()

    # Pass objective fn and params to fmin() to get results
    results = fmin(
        objective,
        space=param_space,
        algo=tpe.suggest,
        trials=trials,
        max_evals=args.max_evals,
        rstate=np.random.default_rng(args.seed),
    )
    print("best (choice indices):", results)
    print("best hyperparameters: ", space_eval(param_space, results))
    print(f"best accuracy: {-trials.best_trial['result']['loss']:.4f} "
          f"after {len(trials)} trials")


if __name__ == "__main__":
    main()
