"""The code of "Introduction to Hyperopt" (/work/shared/seed-hyperopt-intro.txt), with only the
import lines changed, on a small bundled dataset and with fewer evaluations.

The article's listing lost a few characters in publication; the obvious lines are restored
(``random_forest.fit(X_train, y_train)``, the ``scope.int(hp.quniform(...))`` entries and
``import time``). Its objective is declared ``objective(params, X, y)`` while ``fmin`` calls
``fn(params)``, in hyperopt as in parzen, so the data is bound with ``functools.partial`` as
a hyperopt user has to.
"""

from __future__ import annotations

import functools
import time

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from parzen import STATUS_OK, Trials, fmin, hp, space_eval, tpe
from parzen.pyll import scope

MAX_EVALS = 5  # the article uses 150


def test_article_random_forest_example() -> None:
    X, y = load_breast_cancer(return_X_y=True)  # 569 samples, 30 features: max_features=15 fits

    # ---- the article's code, imports changed to parzen ------------------------------------
    # Perform train test split
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.20, random_state=2021)

    # Define objective function
    def objective(params, X, y):
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
        "criterion": hp.choice("criterion", ['gini', 'entropy']),
        "n_estimators": scope.int(hp.quniform("n_estimators", 10, 100, 10)),
        "max_depth": scope.int(hp.quniform("max_depth", 2, 8, 1)),
        "max_features": hp.choice("max_features", ['sqrt', 10, 15])
    }

    # Set up trials for tracking
    trials = Trials()

    # Pass objective fn and params to fmin() to get results
    started = time.time()
    results = fmin(
        functools.partial(objective, X=X, y=y),
        space=param_space,
        algo=tpe.suggest,
        trials=trials,
        max_evals=MAX_EVALS,
        show_progressbar=False,
    )
    # ---- end of the article's code ----------------------------------------------------------

    assert len(trials) == MAX_EVALS
    assert set(results) == {"criterion", "n_estimators", "max_depth", "max_features"}
    assert results["criterion"] in (0, 1) and results["max_features"] in (0, 1, 2)
    best = space_eval(param_space, results)
    assert best["criterion"] in ("gini", "entropy")
    assert best["max_features"] in ("sqrt", 10, 15)
    assert type(best["n_estimators"]) is int and best["n_estimators"] in range(10, 101, 10)
    assert type(best["max_depth"]) is int and 2 <= best["max_depth"] <= 8
    assert -1.0 <= trials.best_trial["result"]["loss"] < -0.8  # accuracy above 80%
    for r in trials.results:
        assert r["status"] == STATUS_OK
        assert started <= r["eval_time"] <= time.time()
    # The best trial's parameters reproduce a valid classifier.
    RandomForestClassifier(**best, n_jobs=1)
