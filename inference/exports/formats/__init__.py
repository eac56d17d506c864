"""Dataset exporters: nnU-Net v2 raw layout and DICOM SEG, assembled into reproducible zips."""
