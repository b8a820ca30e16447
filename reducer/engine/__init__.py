"""The TensorFlow engine: the only modules that import TensorFlow. Import them lazily."""
