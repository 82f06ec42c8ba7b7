// Registers the service worker (sw.js) once the page has loaded. A file rather than an inline script, so the
// Content-Security-Policy needs no hash for it. Copied to dist/ unchanged by trunk (index.html).
if ('serviceWorker' in navigator) {
  window.addEventListener('load', () => {
    navigator.serviceWorker
      .register('/sw.js', { scope: '/', updateViaCache: 'none' })
      .catch((err) => console.warn('agentfarm: service worker not registered', err));
    // Notifications allowed: push.js confirms this device to the server and sets its cookie.
    if (window.Notification && Notification.permission === 'granted') {
      document.head.append(Object.assign(document.createElement('script'), { src: '/push.js' }));
    }
  });
}
