"""The exports room: dataset exports for data managers.

``formats`` (pure writers: nnU-Net, DICOM SEG, the manifest), ``selectors`` (reads),
``services`` (request, build), ``tasks``, ``apis`` and ``views``. The export jobs stay in
``inference.models``.
"""
