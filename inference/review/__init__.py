"""The review room: a model's output against the annotations.

``comparison`` (pure: difference classes, one case's numbers), ``rendering`` (the review
viewer's PNG slices), ``agreement`` (annotator agreement, consensus masks), ``selectors``
(reads), ``services`` (the reviewer's actions, the model review), ``tasks``, ``apis`` and
``views``. The data stays in ``inference.models``.
"""
