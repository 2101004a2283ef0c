"""Audiences: the condition tree, its compiler to SQL and the reference evaluator.

Previews live in `corral.audiences.preview`.

    >>> from corral.audiences import AudienceDefinition
    >>> AudienceDefinition.model_validate(
    ...     {"name": "US", "conditions": [{"property": "country", "equals": "US"}]}
    ... ).conditions[0].operator
    'equals'
"""

from corral.audiences.compiler import AudienceCompiler, check_audiences
from corral.audiences.conditions import AudienceDefinition, Group
from corral.audiences.evaluator import evaluate

__all__ = [
    "AudienceCompiler",
    "AudienceDefinition",
    "Group",
    "check_audiences",
    "evaluate",
]
