"""Which method to use, at what cost: the recommendation from a store's measured runs
(docs/how-to/choose-a-method.md)."""

from promptworth.recommend.inputs import Inputs
from promptworth.recommend.recommendation import Recommendation, recommend

__all__ = ["Inputs", "Recommendation", "recommend"]
