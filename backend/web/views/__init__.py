"""The pages, one module each: sign-in, queue, alert, patient, registration, phone answers."""
