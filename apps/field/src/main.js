import { createApp } from 'vue'
import App from './App.vue'
import { start } from './api.js'
import { setLang, lang } from './i18n.js'
import './style.css'

setLang(lang.value)
if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js')
start().then(() => createApp(App).mount('#app'))
