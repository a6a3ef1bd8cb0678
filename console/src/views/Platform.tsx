export function Platform() {
  return <h1>Platform</h1>;
}
