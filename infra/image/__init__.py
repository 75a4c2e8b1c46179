"""The images and where they go: `Image` (built with BuildKit, tagged by content), `Registry`
(ECR, or a loopback registry locally) and the build context as the provider hashes it."""
