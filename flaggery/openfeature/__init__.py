"""OpenFeature for Python applications that embed flaggery: ``FlaggeryProvider`` resolves
flags in process from an `Evaluator`'s snapshot, with the same reasons and metadata as OFREP;
``ExposureHook`` records an exposure for each evaluation an A/B test decided.

    pip install 'flaggery[openfeature]'
"""

from flaggery.openfeature.exposure_hook import ExposureHook
from flaggery.openfeature.provider import FlaggeryProvider

__all__ = ["ExposureHook", "FlaggeryProvider"]
