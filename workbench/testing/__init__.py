"""Test kit shipped as code (like ``distributed.utils_test``): real multi-node testbeds on one machine."""
