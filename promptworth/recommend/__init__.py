"""Which method to use, at what cost: the recommendation from a store's measured runs
(README "Recommendation")."""

from promptworth.recommend.inputs import Inputs
from promptworth.recommend.recommendation import Recommendation, recommend

__all__ = ["Inputs", "Recommendation", "recommend"]
