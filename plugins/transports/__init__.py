"""Transport plugins: event buses (postgres, redis) and realtime transports."""
