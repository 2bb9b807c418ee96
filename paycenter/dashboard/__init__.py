"""The operators' live dashboard: `paycenter dashboard` (also started by `paycenter run`)."""
