"""Tools that check the twins and the runs rather than produce them: the cross-framework
equivalence suite, the peer-convention presets, the regression gate and its false-alarm
estimate, and the instruction-set sweep."""
