"""OpenFeature for Python applications that embed flaggery: ``FlaggeryProvider`` resolves
flags in process from an `Evaluator`'s snapshot, with the same reasons and metadata as OFREP.

    pip install 'flaggery[openfeature]'
"""

from flaggery.openfeature.provider import FlaggeryProvider

__all__ = ["FlaggeryProvider"]
